"""The per-item report: one JSON object a line with the truth, the guess and the course's colour."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from app.evaluation.metrics import band, squared_log_error
from app.items import Item, atomic_write_text


def report_rows(items: Sequence[Item], guesses: Sequence[float]) -> list[dict]:
    rows = []
    for index, (item, guess) in enumerate(zip(items, guesses, strict=True)):
        rows.append(
            {
                "index": index,
                "title": item.title,
                "category": item.category,
                "truth": item.price,
                "guess": float(guess),
                "error": abs(float(guess) - item.price),
                "sle": squared_log_error(item.price, float(guess)),
                "band": band(item.price, float(guess)),
            }
        )
    return rows


def write_report(path: Path | str, items: Sequence[Item], guesses: Sequence[float]) -> int:
    rows = report_rows(items, guesses)
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)
