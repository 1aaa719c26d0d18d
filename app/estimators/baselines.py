"""The two simplest yardsticks: a seeded random guess and the training mean."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from app.estimators.base import Estimator, EstimatorOptions
from app.estimators.storage import SavedEstimatorError, estimator_folder, read_meta
from app.model.items import Item


class RandomEstimator(Estimator):
    """The course's random pricer: a whole-dollar price from 1 to 999, from a seeded generator.

    The same seed and the same items give the same guesses, call after call."""

    name = "random"

    def __init__(self, seed: int = 42):
        self.seed = seed

    @classmethod
    def create(cls, options: EstimatorOptions) -> RandomEstimator:
        return cls(options.seed)

    def predict(self, items: Sequence[Item]) -> list[float]:
        # Seeded by the item's text, so a guess does not depend on its batch or position.
        return [float(random.Random(f"{self.seed}:{item.text}").randrange(1, 1000)) for item in items]

    def save(self, directory: Path) -> None:
        with estimator_folder(directory, self.name, {"seed": self.seed}):
            pass

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> RandomEstimator:
        return cls(int(read_meta(directory).get("seed", options.seed)))


class ConstantEstimator(Estimator):
    """Always the mean price of the training items."""

    name = "constant"
    needs_training = True

    def __init__(self, value: float | None = None):
        self.value = value

    def fit(self, items: Sequence[Item]) -> ConstantEstimator:
        if not items:
            raise ValueError("constant: no training items")
        self.value = sum(item.price for item in items) / len(items)
        return self

    def predict(self, items: Sequence[Item]) -> list[float]:
        if self.value is None:
            raise RuntimeError("constant: fit it first")
        return [self.value] * len(items)

    def save(self, directory: Path) -> None:
        with estimator_folder(directory, self.name, {"value": self.value}):
            pass

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> ConstantEstimator:
        value = read_meta(directory).get("value")
        if not isinstance(value, (int, float)):
            raise SavedEstimatorError(f"{directory}: constant estimator without a numeric value")
        return cls(float(value))
