"""A recipe's `stack:` section: the folds, seed and level of the stack and its interval, and how it
treats items that say little (issue 30). Every option off is the stack as it always was: the same
params.yaml, the same bundle, the same digest (an option at its default is left out of the dump).

    stack:
      folds: 5                 # cross-fitting folds (the stack's alpha, its offsets, the nested scores)
      seed: 42
      level: 0.8               # the interval's nominal coverage
      title_rows: false        # true: every member also answers each held-out item as its title alone
                               # (Item.title_only()); the stack is fitted and nested-scored on both, an
                               # item and its copy always in one fold; metrics.json scores them apart
      richness: none           # indicators: a column per richness class (title, short) in the stack's
                               # design; interactions: those and every member column times each;
                               # titles-apart: interactions with no weight shared by title rows and the
                               # rest (a title-only answer cannot move the weights full texts get)
      mondrian: false          # true: one pair of conformal offsets per richness class (title, short,
                               # full), each from its own cross-fitted residuals (the pooled pair for a
                               # class under 30 rows; the manifest says which)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def _off(default):
    return lambda value: value == default


class Stack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    folds: int = Field(5, ge=2)
    seed: int = 42
    level: float = Field(0.8, ge=0.5, le=0.99)
    title_rows: bool = Field(False, exclude_if=_off(False),
                             description="Members also answer each held-out item's title-only copy; the stack fits both.")
    richness: Literal["none", "indicators", "interactions", "titles-apart"] = Field(
        "none", exclude_if=_off("none"), description="Richness columns in the stack's design.")
    mondrian: bool = Field(False, exclude_if=_off(False), description="Conformal offsets per richness class.")

    @property
    def uses_rows(self) -> bool:
        """Whether the stack needs its rows' classes and groups (app.ensemble.rows.StackRows)."""
        return self.title_rows or self.richness != "none" or self.mondrian
