"""Combining the members' answers into the served price and interval: pure Python, no numpy.

The bundle holds a stack (weights + conformal offsets) for EVERY non-empty subset of its members,
each fitted out-of-fold on the stacking rows as if only those members existed. So when a member
fails or times out, `combine` uses the stack fitted for exactly the members that answered: no
refit at serving time. Fallback (only for a subset the bundle lacks, e.g. a bundle built with
`--max-subset-members`): the median of the present members' log prices with the widest offsets
among the stored subsets; `Combined.fallback` says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Ensemble:
    members: tuple[str, ...]  # the stack's column order
    subsets: Mapping[str, Mapping]  # subset_key -> {"intercept", "coef", "offsets", ...}
    level: float

    def combine_full(self, member_prices: Mapping[str, float | None]) -> Combined:
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
            columns = logs + ([min(logs), max(logs)] if len(logs) > 1 else [])
            point = float(fit["intercept"]) + sum(float(c) * x for c, x in zip(fit["coef"], columns, strict=True))
            offsets = (float(fit["offsets"][0]), float(fit["offsets"][1]))
        price = max(0.0, math.expm1(point))
        low = max(0.0, math.expm1(point + offsets[0]))
        high = max(0.0, math.expm1(point + offsets[1]))
        return Combined(price, min(low, price), max(high, price), present, fit is None)

    def combine(self, member_prices: Mapping[str, float | None]) -> tuple[float, float, float]:
        """(price, low, high) from the members that answered (None, NaN or a missing key: left out)."""
        c = self.combine_full(member_prices)
        return c.price, c.low, c.high


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
