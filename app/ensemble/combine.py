"""Combining the members' answers into the served price and interval: pure Python, no numpy.

The bundle holds a stack (weights + conformal offsets) for EVERY non-empty subset of its members,
each fitted out-of-fold on the stacking rows as if only those members existed. So when a member
fails or times out, `combine` uses the stack fitted for exactly the members that answered: no
refit at serving time. Fallback (only for a subset the bundle lacks, e.g. a bundle built with
`--max-subset-members`): the median of the present members' log prices with the widest offsets
among the stored subsets; `Combined.fallback` says so.

An item's richness class (app.model.richness: title, short, full) picks its interval's offsets when the
stack has a pair per class (`offsets_by_richness`, a build's `stack.mondrian`), and fills the stack's
richness columns when it has them (`richness`: indicators or interactions, app.ensemble.rows). A
bundle without either (every bundle before them) combines as it always did.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.model.richness import FULL, INDICATED, TITLE

SEP = "+"


class NoMembersError(ValueError):
    """No member gave a usable answer: nothing to combine."""


def subset_key(names: Iterable[str]) -> str:
    return SEP.join(sorted(names))


def usable(price: float | None) -> bool:
    return price is not None and isinstance(price, (int, float)) and math.isfinite(price) and price >= 0


@dataclass(frozen=True)
class Combined:
    price: float
    low: float
    high: float
    members: tuple[str, ...]  # the members whose answers were used
    fallback: bool = False
    richness: str | None = None  # the item's class, when the caller gave it
    offsets: tuple[float, float] | None = None  # the log-space offsets its interval took


@dataclass(frozen=True)
class Ensemble:
    members: tuple[str, ...]  # the stack's column order
    subsets: Mapping[str, Mapping]  # subset_key -> {"intercept", "coef", "offsets", ...}
    level: float

    def combine_full(self, member_prices: Mapping[str, float | None], richness: str | None = None) -> Combined:
        """The stack for the members that answered; `richness`: the item's class (None: full-text
        columns and the pooled offsets)."""
        unknown = set(member_prices) - set(self.members)
        if unknown:
            raise ValueError(f"not members of this ensemble: {', '.join(sorted(unknown))}")
        present = tuple(m for m in self.members if usable(member_prices.get(m)))
        if not present:
            raise NoMembersError("no member answered: nothing to combine")
        logs = [math.log1p(float(member_prices[m])) for m in present]
        fit = self.subsets.get(subset_key(present))
        if fit is None:
            point = _median(logs)
            offsets = (min(s["offsets"][0] for s in self.subsets.values()),
                       max(s["offsets"][1] for s in self.subsets.values()))
        else:
            columns = design_row(logs, fit.get("richness", "none"), richness)
            point = float(fit["intercept"]) + sum(float(c) * x for c, x in zip(fit["coef"], columns, strict=True))
            offsets = subset_offsets(fit, richness)
        price = max(0.0, math.expm1(point))
        low = max(0.0, math.expm1(point + offsets[0]))
        high = max(0.0, math.expm1(point + offsets[1]))
        return Combined(price, min(low, price), max(high, price), present, fit is None, richness, offsets)

    def combine(self, member_prices: Mapping[str, float | None], richness: str | None = None) -> tuple[float, float, float]:
        """(price, low, high) from the members that answered (None, NaN or a missing key: left out)."""
        c = self.combine_full(member_prices, richness)
        return c.price, c.low, c.high

    def intervals(self) -> dict:
        """The full member set's interval as GET /v1/ensemble shows it: the level, the pooled offsets,
        and per richness class its offsets and whether it fell back to the pooled ones."""
        fit = self.subsets.get(subset_key(self.members)) or {}
        by = fit.get("offsets_by_richness")
        return {"level": self.level, "offsets": fit.get("offsets"), "richness_columns": fit.get("richness", "none"),
                "by_richness": None if by is None else {c: {"offsets": v["offsets"], "rows": v["rows"],
                                                            "pooled": v["pooled"]} for c, v in by.items()}}


def subset_offsets(fit: Mapping, richness: str | None) -> tuple[float, float]:
    """A stack's (low, high) for an item of class `richness`: its class's pair, else the pooled one."""
    pair = (fit.get("offsets_by_richness") or {}).get(richness, {}).get("offsets") or fit["offsets"]
    return float(pair[0]), float(pair[1])


def design_row(logs: list[float], columns: str, richness: str | None) -> list[float]:
    """One item's design row, as app.ensemble.stack.design builds it: the members' log prices, their
    min and max, then the richness columns ("indicators": one per INDICATED class; "interactions":
    those, then the columns before them times each indicator; "titles-apart": the same, the columns
    before them zero for a title). No class given: full text."""
    row = logs + ([min(logs), max(logs)] if len(logs) > 1 else [])
    if columns == "none":
        return row
    indicators = [1.0 if (richness or FULL) == c else 0.0 for c in INDICATED]
    if columns == "indicators":
        return row + indicators
    shared = [0.0] * len(row) if columns == "titles-apart" and (richness or FULL) == TITLE else row
    return shared + indicators + [x * i for i in indicators for x in row]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
