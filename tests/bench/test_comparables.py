"""pricer bench comparables: per similarity floor, the share of items that still show any, how many,
and the share of those within 2x of the item's price; on a real (fake-embedder) index."""

from __future__ import annotations

from app.bench.comparables import table, within
from app.index.index import Comparable


def c(price: float, similarity: float) -> Comparable:
    return Comparable(title="x", price=price, similarity=similarity)


def test_the_table_counts_per_floor():
    found = [[c(10, 0.9), c(100, 0.4)], [c(50, 0.2)]]
    rows = table(found, [12.0, 40.0], [0.0, 0.3, 0.5])
    assert rows[0] == {"floor": 0.0, "items_with_any": 1.0, "shown_per_item": 1.5, "within_2x": round(2 / 3, 3)}
    assert rows[1] == {"floor": 0.3, "items_with_any": 0.5, "shown_per_item": 1.0, "within_2x": 0.5}
    assert rows[2] == {"floor": 0.5, "items_with_any": 0.5, "shown_per_item": 0.5, "within_2x": 1.0}
    assert table([[c(1, 0.1)]], [5.0], [0.9])[0]["within_2x"] is None


def test_within_two_times():
    assert within(20, 10) and within(5, 10) and not within(4.9, 10) and not within(21, 10)
