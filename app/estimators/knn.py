"""knn: the price from the k most similar priced items (MiniLM embeddings, FAISS), aggregated in
log space with similarity weights. An item never retrieves itself (exact text match), so a fit
on data that holds the query item still answers out-of-sample.

Defaults tuned on val.jsonl with the index fitted on train.jsonl (docs/retrieval.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.estimators.base import Estimator, EstimatorOptions
from app.estimators.storage import SavedEstimatorError, estimator_folder, read_meta
from app.model.items import Item

INDEX_FOLDER = "index"


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float = 0.5) -> float:
    """The q-quantile of values under weights (the weighted median at 0.5)."""
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights) - 0.5 * weights
    return float(np.interp(q * weights.sum(), cumulative, values))


def aggregate(log_prices: np.ndarray, sims: np.ndarray, rule: str, temperature: float) -> float:
    """One log price from the neighbours' log prices and similarities (nan slots ignored)."""
    ok = ~np.isnan(sims)
    log_prices, sims = log_prices[ok], sims[ok]
    if not len(sims):
        return math.nan
    weights = np.exp((sims - sims.max()) / temperature) if temperature > 0 else np.ones_like(sims)
    if rule == "median":
        return weighted_quantile(log_prices, weights)
    return float(np.average(log_prices, weights=weights))


class KnnEstimator(Estimator):
    name = "knn"
    needs_training = True

    def __init__(self, k: int = 20, rule: str = "mean", temperature: float = 0.05, embedder=None):
        if rule not in ("mean", "median"):
            raise ValueError(f"knn: rule must be mean or median, got {rule!r}")
        if not 1 <= k <= 1000:
            raise ValueError(f"knn: k must be from 1 to 1000, got {k}")
        self.k, self.rule, self.temperature = k, rule, temperature
        self._embedder = embedder
        self.index = None

    @property
    def embedder(self):
        if self._embedder is None:
            from app.index.embedders import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder

    def use_index(self, index) -> KnnEstimator:
        """Answer from an index built elsewhere (the store's, a build's); its embedder embeds the queries."""
        self.index, self._embedder = index, index.embedder
        return self

    def fit(self, items: Sequence[Item]) -> KnnEstimator:
        from app.index.ann import AnnParams
        from app.index.index import Index

        if len(items) < 2:
            raise ValueError(f"knn: needs at least 2 training items, got {len(items)}")
        # Exact search: a few thousand items take about a millisecond a query, and no ANN error.
        self.index = Index.from_items(items, self.embedder, AnnParams(kind="flat"), progress=len(items) > 1000)
        return self

    def neighbours(self, items: Sequence[Item]) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, log prices) of each item's k neighbours, the item itself left out."""
        from app.index.embedders import document
        from app.index.minilm import text_key

        if self.index is None:
            raise RuntimeError("knn: fit it first")
        texts = [document(i) for i in items]
        sims, ids = self.index.search_vectors(self.embedder.encode(texts), self.k, [text_key(t) for t in texts])
        log_prices = np.where(ids >= 0, np.log1p(self.index.prices[np.maximum(ids, 0)]), np.nan)
        return sims, log_prices

    def predict(self, items: Sequence[Item]) -> list[float]:
        if not items:
            return []
        sims, log_prices = self.neighbours(items)
        fallback = float(np.median(np.log1p(self.index.prices)))  # no neighbour left after exclusion
        guesses = (aggregate(lp, s, self.rule, self.temperature) for s, lp in zip(sims, log_prices, strict=True))
        return [max(0.0, math.expm1(fallback if math.isnan(g) else g)) for g in guesses]

    def meta(self) -> dict:
        return {"k": self.k, "rule": self.rule, "temperature": self.temperature, "embedder": self.embedder.name}

    def save(self, directory: Path) -> None:
        if self.index is None:
            raise RuntimeError("knn: nothing to save before fit")
        with estimator_folder(directory, self.name, self.meta()) as tmp:
            (tmp / INDEX_FOLDER).mkdir()
            self.index.write(tmp / INDEX_FOLDER)

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> KnnEstimator:
        from app.index.index import Index

        meta = read_meta(directory)
        try:
            est = cls(k=int(meta["k"]), rule=meta["rule"], temperature=float(meta["temperature"]))
        except (KeyError, TypeError, ValueError) as e:
            raise SavedEstimatorError(f"{directory}: not a knn estimator ({e})") from None
        return est.use_index(Index.load(Path(directory) / INDEX_FOLDER))


