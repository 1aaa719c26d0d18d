"""Request and response bodies of the estimate API (DESIGN.md's HTTP contract, exactly).

The item text is built in app.api.serving with app.items.compose_contents + compose_text, the same
functions curation uses, so the model is asked about text shaped like the text it was trained on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    details: dict[str, str] | None = Field(None, description="Product details, e.g. {\"Brand\": \"Acme\"}.")
    category: str | None = Field(None, description="Product category (informational).")
    adapter: str | None = Field(None, description="Adapter to use: \"name\" or \"name@version\"; default: the active one.")

    @model_validator(mode="after")
    def _title_or_description(self) -> EstimateRequest:
        if not (self.title and self.title.strip()) and not (self.description and self.description.strip()):
            raise ValueError("send a non-empty `title` or `description` (or both)")
        return self


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EstimateRequest] = Field(min_length=1, description="Products, answered in the same order.")


class EstimateResponse(BaseModel):
    price: float = Field(description="Point estimate, dollars.")
    low: float = Field(description="Lower end of the interval from the model's own distribution.")
    high: float = Field(description="Upper end of that interval.")
    currency: Literal["USD"] = "USD"
    model: str = Field(description="The served base model.")
    adapter: str | None = Field(description="The adapter that answered (\"name@version\"), null for the base model.")
    request_id: str


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
