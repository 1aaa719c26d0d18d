"""Bag of words: TF-IDF over word 1- and 2-grams, ridge regression on log price."""

from __future__ import annotations

from collections.abc import Sequence

from app.estimators.sklearn_base import SklearnEstimator
from app.model.items import Item


class BowRidgeEstimator(SklearnEstimator):
    name = "bow-ridge"

    def build_model(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, strip_accents="unicode"),
            Ridge(alpha=1.0),
        )

    def inputs(self, items: Sequence[Item]) -> list[str]:
        return [item.text for item in items]
