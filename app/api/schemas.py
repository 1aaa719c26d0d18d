"""Request and response bodies of the estimate API (DESIGN.md's HTTP contract, exactly).

The item fields are app.pricing.fields'; the item text is built in app.pricing.text with app.model.text.compose_contents + compose_text, the same
functions curation uses, so the model is asked about text shaped like the text it was trained on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from app.pricing.fields import ItemFields


class EstimateRequest(ItemFields):
    """One product. `title` or `description` must be non-empty; `adapter` pins an adapter
    ("name" or "name@version"), else the active one serves."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Acme cordless drill, 20V", "description": "Brushless motor, two batteries and a charger.",
        "features": ["2 speeds", "LED light"], "details": {"Brand": "Acme", "Weight": "3.5 pounds"}}]})


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EstimateRequest] = Field(min_length=1, description="Products, answered in the same order.")


OPTIONAL_FIELDS = ("ensemble", "components", "comparables", "comparables_note")  # left out of an answer when null


class ComparableOut(BaseModel):
    title: str
    price: float = Field(description="Its price, dollars.")
    similarity: float = Field(description="Cosine similarity to the request's text (1 = the same).")


class EstimateResponse(BaseModel):
    price: float = Field(description="Point estimate, dollars.")
    low: float = Field(description="Lower end of the interval (the ensemble's conformal interval, or the LLM's own distribution).")
    high: float = Field(description="Upper end of that interval.")
    currency: Literal["USD"] = "USD"
    model: str = Field(description="The served base model.")
    adapter: str | None = Field(description="The adapter that answered (\"name@version\"), null for the base model.")
    request_id: str
    ensemble: str | None = Field(None, description="The ensemble bundle that answered (\"name@version\"); null: the LLM alone.")
    components: dict[str, float | None] | None = Field(
        None, description="Each ensemble member's price; null for a member left out of this answer (failed or timed out).")
    comparables: list[ComparableOut] | None = Field(None, description="The most similar indexed items, most similar first (when asked), "
                                                    "those at or above the similarity floor only.")
    comparables_note: str | None = Field(None, description="When some of the k asked were below the similarity floor: how many, "
                                                           "and that they are not shown.")

    @model_serializer(mode="wrap")
    def _omit_absent_extras(self, handler):
        """`ensemble`/`components` only when the ensemble answered, `comparables` only when asked."""
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in OPTIONAL_FIELDS} if isinstance(data, dict) else data


class BatchResponse(BaseModel):
    estimates: list[EstimateResponse]


class Problem(BaseModel):
    """application/problem+json (RFC 9457), as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
