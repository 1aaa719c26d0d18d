"""Linear regression on hand-made features, as in the course: weight, size, best-seller rank,
brand, category and text length, parsed from an item's details (and its text where details lack them)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from app.estimators.base import EstimatorOptions
from app.estimators.sklearn_base import SklearnEstimator
from app.estimators.storage import MODEL_FILE, load_model, read_meta
from app.model.items import Item

_POUNDS_PER = {"pound": 1.0, "lb": 1.0, "ounce": 1 / 16, "oz": 1 / 16, "kilogram": 2.20462, "kg": 2.20462, "gram": 0.00220462, "g": 0.00220462}
_WEIGHT = re.compile(r"(\d+(?:\.\d+)?)\s*(pounds?|lbs?|ounces?|oz|kilograms?|kg|grams?|g)\b", re.I)
_DIMS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\"|inches|in|cm)?\s*[xX×]\s*(\d+(?:\.\d+)?)\s*(?:\"|inches|in|cm)?\s*(?:[xX×]\s*(\d+(?:\.\d+)?))?\s*(inches|inch|in\b|\"|cm|centimeters|mm)?", re.I)
_MIN_BRAND_COUNT = 3


def parse_details(item: Item) -> dict:
    if not item.details:
        return {}
    try:
        details = json.loads(item.details)
    except json.JSONDecodeError:
        return {}
    return details if isinstance(details, dict) else {}


def weight_pounds(text: str) -> float | None:
    match = _WEIGHT.search(text)
    if not match:
        return None
    unit = match.group(2).lower().rstrip("s")
    unit = {"lb": "lb", "pound": "pound", "ounce": "ounce", "kilogram": "kilogram", "gram": "gram"}.get(unit, unit)
    return float(match.group(1)) * _POUNDS_PER.get(unit, 1.0)


def volume_cubic_inches(text: str) -> float | None:
    match = _DIMS.search(text)
    if not match:
        return None
    sides = [float(s) for s in match.groups()[:3] if s]
    unit = (match.group(4) or "in").lower()
    scale = {"cm": 1 / 2.54, "centimeters": 1 / 2.54, "mm": 1 / 25.4}.get(unit, 1.0)
    volume = 1.0
    for side in sides:
        volume *= side * scale
    return volume


def best_seller_ranks(details: dict) -> dict[str, float]:
    """An item's best-seller ranks by department, broadest first (as Amazon lists them)."""
    ranks = details.get("Best Sellers Rank")
    if not isinstance(ranks, dict):
        return {}
    return {str(k): float(v) for k, v in ranks.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def best_seller_rank(details: dict) -> float | None:
    """The mean of an item's best-seller ranks (the course's feature)."""
    values = list(best_seller_ranks(details).values())
    return sum(values) / len(values) if values else None


def brand_of(details: dict) -> str | None:
    for key in ("Brand", "Brand Name", "Manufacturer"):
        value = details.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def raw_features(item: Item, details: dict | None = None) -> dict:
    """`details`: the item's parsed details, when the caller has them already."""
    details = parse_details(item) if details is None else details
    weight = weight_pounds(str(details.get("Item Weight", ""))) or weight_pounds(item.text)
    dims_text = " ".join(str(v) for k, v in details.items() if "Dimensions" in k)
    volume = volume_cubic_inches(dims_text) if dims_text else None
    volume = volume or volume_cubic_inches(item.text)
    rank = best_seller_rank(details)
    return {
        "weight": weight,
        "volume": volume,
        "rank": rank,
        "brand": brand_of(details),
        "category": item.category or "unknown",
        "chars": len(item.text),
    }


def _log_or_missing(row: dict, name: str, value: float | None) -> None:
    if value is None or not math.isfinite(value) or value <= 0:
        row[f"{name}_missing"] = 1.0
    else:
        row[f"log_{name}"] = math.log1p(value)


class FeaturesLinearEstimator(SklearnEstimator):
    name = "features-lr"

    def __init__(self, model: object | None = None, brands: Sequence[str] = ()):
        super().__init__(model)
        self.brands = set(brands)

    def build_model(self):
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        return make_pipeline(DictVectorizer(sparse=False), Ridge(alpha=1.0))

    def inputs(self, items: Sequence[Item]) -> list[dict]:
        rows = []
        for item in items:
            f = raw_features(item)
            row = {"log_chars": math.log1p(f["chars"]), f"category={f['category']}": 1.0}
            _log_or_missing(row, "weight", f["weight"])
            _log_or_missing(row, "volume", f["volume"])
            _log_or_missing(row, "rank", f["rank"])
            brand = f["brand"] if f["brand"] in self.brands else "other"
            row[f"brand={brand}"] = 1.0
            rows.append(row)
        return rows

    def fit(self, items: Sequence[Item]) -> FeaturesLinearEstimator:
        counts = Counter(raw_features(item)["brand"] for item in items)
        self.brands = {b for b, c in counts.items() if b and c >= _MIN_BRAND_COUNT}
        return super().fit(items)

    def meta(self) -> dict:
        return {"brands": sorted(self.brands)}

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> FeaturesLinearEstimator:
        meta = read_meta(directory)
        return cls(load_model(Path(directory) / MODEL_FILE), meta.get("brands", []))
