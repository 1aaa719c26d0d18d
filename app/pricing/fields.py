"""The fields of one item to price, as the API and the batch job take them (the API's
EstimateRequest extends them with its OpenAPI examples), and the one description of a validation
failure that both answer with (a 422's detail, a row's reason in the errors file)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.model.text import is_detail_value


def _detail_value(value: Any) -> Any:
    if is_detail_value(value):
        return value
    raise ValueError("a detail's value is a string, a number, or an object of strings and numbers")


DetailValue = Annotated[Any, AfterValidator(_detail_value)]


class ItemFields(BaseModel):
    """One product to price. `title` or `description` must be non-empty; `adapter` pins an adapter
    ("name" or "name@version"), else the active one serves."""

    model_config = ConfigDict(extra="forbid")

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
    def _title_or_description(self) -> ItemFields:
        if not (self.title and self.title.strip()) and not (self.description and self.description.strip()):
            raise ValueError("send a non-empty `title` or `description` (or both)")
        return self


def _field_path(loc: tuple | list) -> str:
    """("body", "items", 2, "title") -> "items[2].title"; the leading "body" is implied."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def describe_validation(errors: list[dict]) -> tuple[str, list[dict]]:
    fields = []
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "malformed JSON")
            position = error["loc"][-1] if error.get("loc") else "?"
            fields.append({"field": "body", "message": f"body is not valid JSON: {reason} at character {position}"})
            continue
        if error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",):
            fields.append({"field": "body", "message": "the request body is empty: send a JSON object"})
            continue
        if tuple(error.get("loc", ())) == ("body",) and error.get("type") == "model_attributes_type":
            hint = (
                "send it with Content-Type: application/json"
                if isinstance(error.get("input"), (bytes, bytearray))
                else 'e.g. {"title": "...", "description": "..."}'
            )
            fields.append({"field": "body", "message": f"the body must be a JSON object; {hint}"})
            continue
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        fields.append({"field": _field_path(error.get("loc", ())), "message": message})
    detail = "; ".join(f"{f['field']}: {f['message']}" if f["field"] != "body" else f["message"] for f in fields)
    return detail, fields
