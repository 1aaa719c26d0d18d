"""Raw Amazon-Reviews-2023 metadata rows that the data tests write themselves."""

from __future__ import annotations

import json
from pathlib import Path

LONG = (
    "This sturdy product has a brass base and a linen shade and lights a whole room evenly. "
    "It is easy to assemble, comes with every screw it needs and carries a two-year warranty. "
)


def raw_row(i: int = 0, price: object = 25.0, **overrides) -> dict:
    row = {
        "main_category": "Tools & Home Improvement",
        "title": f"Acme lamp number {i} with model code XJ{i:06d}",
        "average_rating": 4.2,
        "features": [f"Feature {i}: bright", "Energy saving bulb included"],
        "description": [LONG * 8],
        "price": price,
        "details": {"Brand": "Acme", "Batteries Included?": "No", "Item Weight": f"{i % 9 + 1} pounds"},
        "parent_asin": f"B{i:09d}",
    }
    row.update(overrides)
    return row


def write_raw(path: Path, rows: list, extra_lines: list[str] = ()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path
