"""One small interface for every estimator: baselines, the frontier API, the LLM, a running service.

An estimator is fitted on items (a no-op for those that need no training), predicts a price for
each item, and, if it learned something, saves to and loads from a folder (no pickle: JSON,
safetensors, skops). `evaluate --estimator DIR` loads a saved one.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.model.items import Item

ESTIMATOR_FILE = "estimator.json"  # in a saved estimator's folder: {"name": ..., ...}


@dataclass
class EstimatorOptions:
    """What the command line can pass to an estimator."""

    settings: Settings = field(default_factory=Settings)
    seed: int = 42
    adapter: str | None = None  # llm: an adapter folder or name[@version]
    url: str | None = None  # http: a running Pricer service


class Estimator(ABC):
    name: str = ""
    needs_training: bool = False  # True: evaluate/leaderboard require --train

    @classmethod
    def create(cls, options: EstimatorOptions) -> Estimator:
        return cls()

    def fit(self, items: Sequence[Item]) -> Estimator:
        return self

    @abstractmethod
    def predict(self, items: Sequence[Item]) -> list[float]: ...

    def save(self, directory: Path) -> None:
        raise NotImplementedError(f"estimator {self.name!r} has nothing to save")

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> Estimator:
        raise NotImplementedError(f"estimator {cls.name!r} cannot be loaded from a folder")

    def describe(self) -> dict:
        """Facts about what was scored, added to `evaluate --json` (the llm: which adapter answered)."""
        return {}

    def close(self) -> None:
        """Release engines, clients, processes."""


# name -> "module:Class", imported only when used (so `random` does not import torch).
REGISTRY: dict[str, str] = {
    "random": "app.estimators.baselines:RandomEstimator",
    "constant": "app.estimators.baselines:ConstantEstimator",
    "features-lr": "app.estimators.features:FeaturesLinearEstimator",
    "details-gbm": "app.estimators.details_gbm:DetailsGbmEstimator",
    "bow-ridge": "app.estimators.bow:BowRidgeEstimator",
    "embed-gbm": "app.estimators.embeddings:EmbedGbmEstimator",
    "embed-rf": "app.estimators.embeddings:EmbedRfEstimator",
    "knn": "app.estimators.knn:KnnEstimator",
    "sparse-mlp": "app.estimators.sparse_mlp:SparseMlpEstimator",
    "frontier": "app.estimators.frontier:FrontierEstimator",
    "llm": "app.pricing.llm_estimator:LlmEstimator",
    "http": "app.estimators.http:HttpEstimator",
    "llm-head": "app.estimators.llm_head:LlmHeadEstimator",
    "knowledge": "app.estimators.knowledge:KnowledgeEstimator",
}


class UnknownEstimatorError(ValueError):
    pass


def estimator_class(name: str) -> type[Estimator]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UnknownEstimatorError(
            f"unknown estimator {name!r}: use one of {', '.join(REGISTRY)} or a saved estimator's folder"
        ) from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def create(name_or_dir: str, options: EstimatorOptions) -> Estimator:
    """An estimator by registry name, or loaded from a folder that `pricer fit` wrote."""
    path = Path(name_or_dir)
    if (path / ESTIMATOR_FILE).is_file():
        saved = json.loads((path / ESTIMATOR_FILE).read_text())
        return estimator_class(saved["name"]).load(path, options)
    return estimator_class(name_or_dir).create(options)
