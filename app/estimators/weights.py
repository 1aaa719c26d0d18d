"""Sample weights by an item's origin: the course's own items (drawn like val and the sealed set)
count fully, other mixes (the "lite" Appliances split, ../shared/data/extra.jsonl) count less.

Groups, from `Item.origin`: `course` (course-test:*, course-train:*), `lite` (lite-appliances-*),
`extra` (anything else, e.g. other people's re-runs of the curation), `unknown` (no origin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.model.items import Item

GROUPS = ("course", "lite", "extra", "unknown")


def origin_group(item: Item) -> str:
    origin = item.origin or ""
    if not origin:
        return "unknown"
    if origin.startswith(("course-test", "course-train")):
        return "course"
    if origin.startswith("lite-"):
        return "lite"
    return "extra"


def parse_weights(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """`"course=1,lite=0.5,extra=0.2"` (or a mapping) -> weights; groups not named weigh 1."""
    if not spec:
        return {}
    pairs = spec.items() if isinstance(spec, Mapping) else (p.split("=", 1) for p in spec.split(",") if p.strip())
    weights: dict[str, float] = {}
    for name, value in pairs:
        name = str(name).strip()
        if name not in GROUPS:
            raise ValueError(f"unknown origin group {name!r}: use {', '.join(GROUPS)}")
        weight = float(value)
        if not weight >= 0:
            raise ValueError(f"weight of {name} must be >= 0, got {value!r}")
        weights[name] = weight
    return weights


def sample_weights(items: Sequence[Item], weights: Mapping[str, float]) -> list[float]:
    return [float(weights.get(origin_group(item), 1.0)) for item in items]
