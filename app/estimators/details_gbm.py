"""Gradient boosting on the facts an item's details state: weight, size, best-seller ranks, brand,
category, the rank's department, country of origin, year first available, how much it lists.

features-lr reads the same details with a linear model on a few logs and one-hot brands; the price
depends on them in ways a line cannot follow (a rank means little without its department, a brand
only within its category). Trees with native categorical splits follow them: on val.jsonl this scores
$108.44 alone against features-lr's $113.69, and in the shipped stack it replaces features-lr
(docs/ensemble.md has the paired figures).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from app.estimators.base import EstimatorOptions
from app.estimators.features import best_seller_ranks, parse_details, raw_features
from app.estimators.sklearn_base import SklearnEstimator
from app.estimators.storage import MODEL_FILE, load_model, read_meta
from app.model.items import Item

_YEAR = re.compile(r"\b(19|20)\d\d\b")

# Numeric columns (None = missing; the trees route missing values on their own).
NUMERIC = ("weight", "volume", "rank_first", "rank_last", "ranks", "year", "detail_keys", "chars",
           "title_chars", "discontinued")
_LOGGED = {"weight", "volume", "rank_first", "rank_last", "chars", "title_chars"}
# Categorical columns: a value seen at least MIN_COUNT times in training gets a code, the rest are missing.
CATEGORICAL = ("brand", "category", "rank_department", "country")
MIN_COUNT = 3
MAX_LEVELS = 250  # HistGradientBoostingRegressor takes at most 255 categories a column


def detail_facts(item: Item) -> dict:
    """The raw facts of one item, before encoding."""
    details = parse_details(item)
    base = raw_features(item, details)
    ranks = best_seller_ranks(details)
    values = list(ranks.values())
    year = _YEAR.search(str(details.get("Date First Available", "")))
    country = details.get("Country of Origin")
    return {
        "weight": base["weight"], "volume": base["volume"],
        "rank_first": values[0] if values else None, "rank_last": values[-1] if values else None,
        "ranks": float(len(values)), "year": float(year.group(0)) if year else None,
        "detail_keys": float(len(details)), "chars": float(base["chars"]), "title_chars": float(len(item.title)),
        "discontinued": {"Yes": 1.0, "No": 0.0}.get(details.get("Is Discontinued By Manufacturer")),
        "brand": base["brand"], "category": base["category"],
        "rank_department": next(iter(ranks), None),
        "country": country.strip().lower() if isinstance(country, str) and country.strip() else None,
    }


def _numeric(name: str, value: float | None) -> float:
    if value is None or not math.isfinite(value):
        return math.nan
    if name in _LOGGED:
        return math.log1p(value) if value > 0 else math.nan
    return value


class DetailsGbmEstimator(SklearnEstimator):
    name = "details-gbm"

    def __init__(self, model: object | None = None, levels: dict[str, list[str]] | None = None, seed: int = 0,
                 columns: Sequence[str] | None = None):
        super().__init__(model)
        self.levels = levels or {}
        self.seed = seed
        # The columns the model reads: those with a value in some training item (the trees' binning
        # refuses a column that is missing everywhere, e.g. a training set without details).
        self.columns = list(columns) if columns is not None else [*NUMERIC, *CATEGORICAL]

    @classmethod
    def create(cls, options: EstimatorOptions) -> DetailsGbmEstimator:
        return cls(seed=options.seed)

    def build_model(self):
        from sklearn.ensemble import HistGradientBoostingRegressor

        mask = [c in CATEGORICAL for c in self.columns]
        return HistGradientBoostingRegressor(max_iter=600, learning_rate=0.04, l2_regularization=1.0,
                                             min_samples_leaf=20, categorical_features=mask,
                                             random_state=self.seed)

    def _encode(self, facts: dict, column: str, codes: dict[str, dict[str, int]]) -> float:
        if column in CATEGORICAL:
            return float(codes[column][facts[column]]) if facts[column] in codes[column] else math.nan
        return _numeric(column, facts[column])

    def _matrix(self, facts: Sequence[dict]):
        import numpy as np

        codes = {c: {v: i for i, v in enumerate(self.levels.get(c, []))} for c in CATEGORICAL}
        rows = [[self._encode(f, c, codes) for c in self.columns] for f in facts]
        return np.asarray(rows, dtype=float).reshape(len(rows), len(self.columns))

    def inputs(self, items: Sequence[Item]):
        return self._matrix([detail_facts(item) for item in items])

    def fit(self, items: Sequence[Item]) -> DetailsGbmEstimator:
        import numpy as np

        self.check_training_items(items)
        facts = [detail_facts(item) for item in items]  # each item's details parsed once for the whole fit
        self.levels = {}
        for column in CATEGORICAL:
            counts = Counter(f[column] for f in facts if f[column])
            self.levels[column] = [v for v, n in counts.most_common(MAX_LEVELS) if n >= MIN_COUNT]
        self.columns = [*NUMERIC, *CATEGORICAL]
        matrix = self._matrix(facts)
        seen = ~np.isnan(matrix).all(axis=0)
        self.columns = [c for c, keep in zip(self.columns, seen, strict=True) if keep]
        if not self.columns:
            raise ValueError(f"{self.name}: the training items state no facts at all")
        return self.fit_inputs(matrix[:, seen], items)

    def meta(self) -> dict:
        return {"levels": self.levels, "seed": self.seed, "columns": self.columns}

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> DetailsGbmEstimator:
        meta = read_meta(directory)
        return cls(load_model(Path(directory) / MODEL_FILE), meta.get("levels", {}), meta.get("seed", 0),
                   meta.get("columns"))
