"""Balanced sampling by price slot and category, and the seeded splits."""

from __future__ import annotations

from collections import Counter

import pytest

from app.data.sampling import Balance, balanced_sample, split, split_counts
from app.model.items import Item


def _item(i: int, price: float, category: str | None) -> Item:
    return Item(title=f"t{i}", price=price, text=f"t{i}\nbody", category=category)


def _pool() -> list[Item]:
    items = [_item(i, 20.0, "Automotive") for i in range(90)]  # a crowded $20 slot, one category dominant
    items += [_item(100 + i, 20.2, "Toys") for i in range(10)]
    items += [_item(200 + i, 300.0, "Automotive") for i in range(50)]  # expensive: all kept
    items += [_item(300 + i, 55.0, None) for i in range(5)]
    return items


def test_crowded_slots_are_capped_and_rarer_categories_favoured():
    sample = balanced_sample(_pool(), Balance(slot_cap=20, keep_all_from=240), seed=1)
    by_slot = Counter(round(i.price) for i in sample)
    assert by_slot == {20: 20, 300: 50, 55: 5}
    cheap = Counter(i.category for i in sample if round(i.price) == 20)
    assert cheap["Toys"] >= 5  # 10% of the slot in the pool; weights by inverse share lift it toward half


def test_sampling_is_seeded():
    a = balanced_sample(_pool(), Balance(slot_cap=20), seed=1)
    assert a == balanced_sample(_pool(), Balance(slot_cap=20), seed=1)
    assert a != balanced_sample(_pool(), Balance(slot_cap=20), seed=2)


def test_size_limits_the_sample():
    assert len(balanced_sample(_pool(), Balance(slot_cap=20, size=30))) == 30


def test_splits_are_disjoint_seeded_and_sized():
    items = [_item(i, 10.0 + i, None) for i in range(100)]
    parts = split(items, val=0.1, test=5, seed=3)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [85, 10, 5]
    titles = [i.title for part in parts.values() for i in part]
    assert sorted(titles) == sorted(i.title for i in items)
    assert parts == split(items, val=0.1, test=5, seed=3)
    assert parts["test"] != split(items, val=0.1, test=5, seed=4)["test"]


@pytest.mark.parametrize(("val", "test", "message"), [(60, 50, "need more than"), (-1, 0, "negative")])
def test_impossible_splits_are_refused(val, test, message):
    with pytest.raises(ValueError, match=message):
        split_counts(100, val, test)
