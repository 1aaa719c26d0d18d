"""Small synthetic data for tests: items whose text says something about their price."""

from __future__ import annotations

import random

from app.items import Item

_KINDS = [
    ("USB cable", 8.0), ("phone case", 15.0), ("desk lamp", 35.0), ("office chair", 180.0),
    ("car battery", 120.0), ("cordless drill", 95.0), ("espresso machine", 450.0), ("laptop stand", 40.0),
    ("refrigerator water filter", 30.0), ("dishwasher pump", 85.0),
]
_CATEGORIES = ["Electronics", "Automotive", "Appliances", "Tools_and_Home_Improvement", None]


def make_items(n: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        kind, base = _KINDS[i % len(_KINDS)]
        price = round(base * rng.uniform(0.7, 1.4), 2)
        quality = "premium heavy duty" if price > base else "basic compact"
        title = f"Acme {quality} {kind} model {i}"
        body = (
            f"This {quality} {kind} is built for everyday use. It weighs {rng.randint(1, 40)} pounds "
            f"and measures {rng.randint(2, 30)} x {rng.randint(2, 30)} inches. Brand Acme."
        )
        items.append(Item(title=title, category=_CATEGORIES[i % len(_CATEGORIES)], price=price, text=f"{title}\n{body}"))
    return items
