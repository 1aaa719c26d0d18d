"""The per-item report: one JSON object a line with the truth, the guess and the course's colour.

`item` identifies the item (a hash of its text and price), so two reports can be paired on the
same items (`pricer compare`); `low` and `high` are there when the estimator gives an interval."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from app.evaluation.metrics import band, squared_log_error
from app.model.items import Item
from app.runtime.atomic import atomic_write_text


def item_key(item: Item) -> str:
    """A short stable identity for an item: the same text and price give the same key."""
    return hashlib.sha256(f"{item.text}\x00{item.price!r}".encode()).hexdigest()[:16]


def report_rows(items: Sequence[Item], guesses: Sequence[float], intervals: Sequence[tuple[float, float]] | None = None) -> list[dict]:
    rows = []
    for index, (item, guess) in enumerate(zip(items, map(float, guesses), strict=True)):
        rows.append({"index": index, "item": item_key(item), "title": item.title, "category": item.category,
                     "truth": item.price, "guess": guess, "error": abs(guess - item.price),
                     "sle": squared_log_error(item.price, guess), "band": band(item.price, guess)})
        if intervals is not None:
            rows[-1]["low"], rows[-1]["high"] = (float(v) for v in intervals[index])
    return rows


def write_report(path: Path | str, items: Sequence[Item], guesses: Sequence[float],
                 intervals: Sequence[tuple[float, float]] | None = None) -> int:
    rows = report_rows(items, guesses, intervals)
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)
