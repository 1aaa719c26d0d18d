"""Balanced sampling and splits, generalizing the course's notebook.

The course bins items by whole-dollar price, keeps every item of the rarer expensive bins (from
$240 up), and caps each crowded bin at 1,200 items drawn with weights that favour the less common
categories (it weighted Automotive 1 and the rest 5). Here the weight of a category is the inverse
of its share of the pool, so no category dominates a crowded bin; the cap and threshold are parameters.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from app.model.items import Item


@dataclass(frozen=True)
class Balance:
    slot_cap: int = 1200  # most items per whole-dollar price slot below `keep_all_from`
    keep_all_from: float = 240.0  # slots at or above this price keep every item
    size: int | None = None  # after balancing, at most this many items (uniform draw)


def _weighted_sample_without_replacement(rng: random.Random, items: list[Item], weights: list[float], k: int) -> list[Item]:
    # Efraimidis-Spirakis: key = u^(1/w), keep the k largest.
    keyed = sorted(((rng.random() ** (1.0 / w), i) for i, w in enumerate(weights)), reverse=True)
    return [items[i] for _, i in keyed[:k]]


def balanced_sample(items: Sequence[Item], balance: Balance = Balance(), seed: int = 42) -> list[Item]:
    rng = random.Random(seed)
    shares = Counter(item.category for item in items)
    slots: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        slots[round(item.price)].append(item)
    sample: list[Item] = []
    for price in sorted(slots):
        slot = slots[price]
        if price >= balance.keep_all_from or len(slot) <= balance.slot_cap:
            sample.extend(slot)
        else:
            weights = [1.0 / shares[item.category] for item in slot]
            sample.extend(_weighted_sample_without_replacement(rng, slot, weights, balance.slot_cap))
    rng.shuffle(sample)
    return sample if balance.size is None else sample[: balance.size]


def split_counts(total: int, val: float, test: float) -> tuple[int, int]:
    """A value below 1 is a fraction of `total`, otherwise a count."""

    def count(v: float) -> int:
        if v < 0:
            raise ValueError("split sizes must not be negative")
        return round(total * v) if v < 1 else int(v)

    n_val, n_test = count(val), count(test)
    if n_val + n_test > total:
        raise ValueError(f"validation ({n_val}) and test ({n_test}) need more than the {total} items sampled")
    return n_val, n_test


def split(items: Sequence[Item], val: float, test: float, seed: int = 42) -> dict[str, list[Item]]:
    """Shuffled train / val / test; the same seed gives the same split."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n_val, n_test = split_counts(len(shuffled), val, test)
    return {"test": shuffled[:n_test], "val": shuffled[n_test : n_test + n_val], "train": shuffled[n_test + n_val :]}
