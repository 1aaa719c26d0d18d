"""Request and response bodies of the estimate API (DESIGN.md's HTTP contract, exactly).

The item text is built in app.api.serving with app.model.text.compose_contents + compose_text, the same
functions curation uses, so the model is asked about text shaped like the text it was trained on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_serializer, model_validator


def is_detail_value(value: Any) -> bool:
    """A detail's value as Amazon's metadata holds them: a string, a number, or one level of name ->
    string or number ("Best Sellers Rank": {"Automotive": 3031316}, which the features member reads)."""

    def scalar(v: Any) -> bool:
        return isinstance(v, (str, int, float)) and not isinstance(v, bool)

    return scalar(value) or (isinstance(value, dict) and all(isinstance(k, str) and scalar(v) for k, v in value.items()))


def _detail_value(value: Any) -> Any:
    if is_detail_value(value):
        return value
    raise ValueError("a detail's value is a string, a number, or an object of strings and numbers")


DetailValue = Annotated[Any, AfterValidator(_detail_value)]


class EstimateRequest(BaseModel):
    """One product. `title` or `description` must be non-empty; `adapter` pins an adapter
    ("name" or "name@version"), else the active one serves."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Acme cordless drill, 20V",
                    "description": "Brushless motor, two batteries and a charger.",
                    "features": ["2 speeds", "LED light"],
                    "details": {"Brand": "Acme", "Weight": "3.5 pounds"},
                }
            ]
        },
    )

    title: str | None = Field(None, description="Product title.")
    description: str | None = Field(None, description="Product description (long ones are cut to the model's budget).")
    features: list[str] | None = Field(None, description="Feature bullet points.")
    details: dict[str, DetailValue] | None = Field(
        None, description="Product details as the marketplace lists them, e.g. {\"Brand\": \"Acme\", \"Best Sellers Rank\": "
                          "{\"Tools\": 1234}}: strings, numbers, or one level of name -> string or number.")
    category: str | None = Field(None, description="Product category (informational).")
    adapter: str | None = Field(None, description="Adapter to use: \"name\" or \"name@version\"; default: the active one.")
    comparables: int = Field(0, ge=0, le=20, description="How many similar priced items (0-20) to return behind the estimate.")

    @model_validator(mode="after")
    def _title_or_description(self) -> EstimateRequest:
        if not (self.title and self.title.strip()) and not (self.description and self.description.strip()):
            raise ValueError("send a non-empty `title` or `description` (or both)")
        return self


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EstimateRequest] = Field(min_length=1, description="Products, answered in the same order.")


OPTIONAL_FIELDS = ("ensemble", "components", "comparables")  # left out of an answer when null


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
    comparables: list[ComparableOut] | None = Field(None, description="The most similar indexed items, most similar first (when asked).")

    @model_serializer(mode="wrap")
    def _omit_absent_extras(self, handler):
        """`ensemble`/`components` only when the ensemble answered, `comparables` only when asked."""
        data = handler(self)
        for key in OPTIONAL_FIELDS:
            if isinstance(data, dict) and data.get(key) is None:
                data.pop(key, None)
        return data


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
