"""What the stack knows about its rows besides the members' answers, when a build asks for it (recipe
`stack: {title_rows, richness, mondrian}`): each row's richness class (app.model.richness), its group
(an item and its title-only copy share a group, and so every fold: no copy is ever scored by a stack
fitted on its twin), whether it is such a copy, and what the stack does with the class:

    features   "none"; "indicators": a column per class in INDICATED (1 on that class's rows);
               "interactions": those, and every design column times each indicator (per-class weights);
               "titles-apart": as interactions, but the members' shared columns are zero on title rows,
               the class indicators (almost) unpenalised and the title columns under an alpha of their
               own, so title-only items get weights, an intercept and an alpha of their own, and full
               texts get what a stack fitted on them alone gives them (a member's title answers, e.g.
               the knowledge member's title head, cannot move them)
    mondrian   conformal offsets per class, each from that class's out-of-fold residuals

`None` in place of a StackRows everywhere means what a bundle did before: ungrouped folds, no columns,
one pair of offsets; the same numbers, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.ensemble.conformal import conformal_offsets
from app.model.items import Item
from app.model.richness import CLASSES, INDICATED, TITLE
from app.model.richness import richness as richness_of

FEATURES = ("none", "indicators", "interactions", "titles-apart")
MIN_CLASS_ROWS = 30  # a class with fewer out-of-fold residuals takes the pooled offsets


@dataclass(frozen=True, eq=False)
class StackRows:
    classes: np.ndarray  # str, one per row
    groups: np.ndarray  # int, one per row: rows of a group share every fold
    copies: np.ndarray  # bool: a title-only copy of another row (scored apart: "titles")
    features: str = "none"
    mondrian: bool = False

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"richness features {self.features!r}: one of {', '.join(FEATURES)}")
        unknown = sorted(set(self.classes.tolist()) - set(CLASSES))
        if unknown:
            raise ValueError(f"unknown richness class(es) {unknown}: one of {', '.join(CLASSES)}")
        if not len(self.classes) == len(self.groups) == len(self.copies):
            raise ValueError("classes, groups and copies need one entry per row")

    @classmethod
    def of(cls, classes: Sequence[str], groups: Sequence[int] | None = None, copies: Sequence[bool] | None = None,
           features: str = "none", mondrian: bool = False) -> StackRows:
        n = len(classes)
        return cls(np.asarray(classes, dtype=object), np.arange(n) if groups is None else np.asarray(groups, dtype=int),
                   np.zeros(n, dtype=bool) if copies is None else np.asarray(copies, dtype=bool), features, mondrian)

    def __len__(self) -> int:
        return len(self.classes)

    def take(self, mask: np.ndarray) -> StackRows:
        return StackRows(self.classes[mask], self.groups[mask], self.copies[mask], self.features, self.mondrian)

    def settings(self) -> dict:
        """What a manifest records of them (not the rows)."""
        counts = {c: int((self.classes == c).sum()) for c in CLASSES}
        return {"features": self.features, "mondrian": self.mondrian, "rows": len(self), "copies": int(self.copies.sum()),
                "classes": counts}


def extra_columns(base: np.ndarray, rows: StackRows | None) -> np.ndarray:
    """The design's richness columns for `base` (the members' columns with min and max): none, the
    INDICATED indicators, or those and base times each (order: base x title, then base x short)."""
    if rows is None or rows.features == "none":
        return np.empty((len(base), 0))
    indicators = np.column_stack([(rows.classes == c).astype(float) for c in INDICATED])
    if rows.features == "indicators":
        return indicators
    return np.column_stack([indicators] + [base * indicators[:, [j]] for j in range(len(INDICATED))])


def penalties(n_base: int, n_columns: int, rows: StackRows | None, alpha: float, title_alpha: float | None = None) -> np.ndarray:
    """The ridge penalty of each design column: `alpha`; under "titles-apart" (almost) none on the class
    indicators and `title_alpha` on the title columns. Each class's intercept is then free and the title
    columns read title rows only, so the shared intercept and weights are fitted by the other rows alone
    (a tiny penalty keeps an empty class solvable)."""
    weights = np.full(n_columns, float(alpha))
    if rows is not None and rows.features == "titles-apart":
        first = n_base + len(INDICATED)  # the interactions: base x title first (INDICATED's order)
        weights[n_base:first] = 1e-9
        weights[first:first + n_base] = alpha if title_alpha is None else title_alpha
    return weights


def shared_columns(base: np.ndarray, rows: StackRows | None) -> np.ndarray:
    """The members' columns every class shares: `base`, or under "titles-apart" zero on title rows."""
    if rows is None or rows.features != "titles-apart":
        return base
    return base * (rows.classes != TITLE).astype(float)[:, None]


def class_offsets(residuals: np.ndarray, rows: StackRows, level: float, pooled: tuple[float, float]) -> dict:
    """Per class, its own conformal offsets from its rows' residuals, or the pooled ones when it has
    fewer than MIN_CLASS_ROWS rows: {class: {"offsets": [low, high], "rows": n, "pooled": bool}}."""
    out = {}
    for c in CLASSES:
        mine = residuals[rows.classes == c]
        own = len(mine) >= MIN_CLASS_ROWS
        out[c] = {"offsets": list(conformal_offsets(mine, level) if own else pooled), "rows": int(len(mine)), "pooled": not own}
    return out



def with_title_copies(items: Sequence[Item], answers: Mapping[str, Sequence[float]],
                      title_answers: Mapping[str, Sequence[float]] | None, features: str = "none",
                      mondrian: bool = False) -> tuple[list[Item], dict[str, list[float]], StackRows]:
    """(the stacking items, each member's answers on them, their StackRows): `items`, then, when
    `title_answers` (each member's answers on the items' Item.title_only() copies, in order) is given,
    those copies; an item and its copy in one group. What a build stacks, and what the comparison
    re-stacks an active bundle with."""
    every, copies = list(items), [False] * len(items)
    answers = {name: list(prices) for name, prices in answers.items()}
    if title_answers is not None:
        answers = {name: prices + list(title_answers[name]) for name, prices in answers.items()}
        every, copies = every + [i.title_only() for i in items], copies + [True] * len(items)
    groups = [i % len(items) for i in range(len(every))]
    return every, answers, StackRows.of([richness_of(i) for i in every], groups, copies, features, mondrian)


def take(rows: StackRows | None, mask: np.ndarray) -> StackRows | None:
    return None if rows is None else rows.take(mask)
