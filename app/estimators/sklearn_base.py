"""Shared shape of the estimators that are one scikit-learn model on log price."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from app.estimators.base import Estimator, EstimatorOptions
from app.estimators.storage import MODEL_FILE, dump_model, estimator_folder, load_model, read_meta
from app.model.items import Item


def to_log(prices: Sequence[float]) -> list[float]:
    return [math.log1p(p) for p in prices]


def from_log(values: Sequence[float]) -> list[float]:
    """Back to dollars, never below zero (the metrics refuse negative guesses)."""
    return [max(0.0, math.expm1(float(v))) for v in values]


class SklearnEstimator(Estimator):
    """A fitted scikit-learn model saved as model.skops; subclasses say how items become inputs."""

    needs_training = True

    def __init__(self, model: object | None = None):
        self.model = model

    def build_model(self) -> object:
        raise NotImplementedError

    def inputs(self, items: Sequence[Item]):
        raise NotImplementedError

    def meta(self) -> dict:
        return {}

    def more_models(self) -> dict[str, object]:
        """Further fitted models saved beside model.skops, by file name (a subclass with several heads)."""
        return {}

    def fit(self, items: Sequence[Item]) -> SklearnEstimator:
        self.check_training_items(items)
        return self.fit_inputs(self.inputs(items), items)

    def check_training_items(self, items: Sequence[Item]) -> None:
        if len(items) < 2:
            raise ValueError(f"{self.name}: needs at least 2 training items, got {len(items)}")

    def fit_inputs(self, inputs, items: Sequence[Item]) -> SklearnEstimator:
        """Fit a new model on inputs already built from `items` (a subclass that needs them first)."""
        model = self.build_model()
        model.fit(inputs, to_log([i.price for i in items]))
        self.model = model
        return self

    def predict(self, items: Sequence[Item]) -> list[float]:
        if self.model is None:
            raise RuntimeError(f"{self.name}: fit it first")
        if not items:
            return []
        return from_log(self.model.predict(self.inputs(items)))

    def save(self, directory: Path) -> None:
        if self.model is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit")
        with estimator_folder(directory, self.name, self.meta()) as tmp:
            dump_model(self.model, tmp / MODEL_FILE)
            for file, model in self.more_models().items():
                dump_model(model, tmp / file)

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> SklearnEstimator:
        read_meta(directory)
        return cls(load_model(Path(directory) / MODEL_FILE))
