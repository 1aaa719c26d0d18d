"""The item schema: one priced product, as curated, shared by every stage (curation, training,
evaluation, serving, the batch job)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.model.prompt import build_completion, build_prompt
from app.model.text import compose_text


class Item(BaseModel):
    """One priced product, as curated. `text` is the description the model sees, title first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str = Field(min_length=1)
    category: str | None = None
    price: float = Field(gt=0, allow_inf_nan=False)
    text: str = Field(min_length=1)
    details: str | None = None
    origin: str | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price_is_a_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"price must be a number of dollars, got {value!r}")
        return value

    @property
    def prompt(self) -> str:
        return build_prompt(self.text)

    @property
    def completion(self) -> str:
        return build_completion(self.price)

    def title_only(self) -> Item:
        """This item as a client that sends only its title has it priced: the text the service builds
        from a title alone, no details, no category (the price stays, to score the answer)."""
        return self.model_copy(update={"text": compose_text(self.title, ""), "details": None, "category": None})


def from_origin(items, prefix: str | None) -> list[Item]:
    """The items whose `origin` starts with `prefix` (all of them for None or ""): `course` keeps the
    course's own curated items (`pricer fit --origin`, a recipe's filters)."""
    return [i for i in items if (i.origin or "").startswith(prefix or "")]
