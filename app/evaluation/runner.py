"""Running an estimator over items: create (or load), fit when it must, predict with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from app.estimators.base import ESTIMATOR_FILE, Estimator, EstimatorOptions, create
from app.evaluation.bootstrap import bootstrap_mean_ci, coverage
from app.evaluation.metrics import Score, score
from app.model.items import Item


class NeedsTrainingError(ValueError):
    """An estimator that must be fitted was asked to predict without training items."""


@dataclass
class Run:
    estimator: str
    guesses: list[float]
    score: Score
    fit_seconds: float
    predict_seconds: float
    truths: list[float] = field(default_factory=list)
    intervals: list[tuple[float, float]] | None = None  # [low, high] per item, where the estimator gives them
    facts: dict = field(default_factory=dict)  # Estimator.describe(): e.g. the llm's adapter (`name@version`)

    @cached_property
    def mean_error_ci(self) -> tuple[float, float]:
        """Seeded 95% bootstrap interval of the mean error over these items."""
        return bootstrap_mean_ci([abs(g - t) for t, g in zip(self.truths, self.guesses, strict=True)])

    @property
    def coverage(self) -> float | None:
        if self.intervals is None:
            return None
        return coverage(self.truths, [lo for lo, _ in self.intervals], [hi for _, hi in self.intervals])

    def to_dict(self) -> dict:
        out = {"estimator": self.estimator, **self.score.to_dict()}
        if self.truths:
            out["mean_error_ci"] = [round(v, 4) for v in self.mean_error_ci]
        if self.intervals is not None:
            out["coverage"] = self.coverage
        return out | self.facts | {"fit_seconds": round(self.fit_seconds, 3), "predict_seconds": round(self.predict_seconds, 3)}

    def summary(self) -> str:
        """One line: the course's title, the CI of the mean error and, with intervals, coverage."""
        low, high = self.mean_error_ci
        line = f"{self.score.title(self.estimator)} mean error 95% CI [${low:,.2f}, ${high:,.2f}]"
        if self.intervals is not None:
            line += f" coverage={self.coverage * 100:.1f}%"
        return line


def is_saved_estimator(name_or_dir: str) -> bool:
    return (Path(name_or_dir) / ESTIMATOR_FILE).is_file()


def prepare_estimator(name_or_dir: str, options: EstimatorOptions, train: Sequence[Item] | None) -> tuple[Estimator, float]:
    """The estimator, fitted on `train` if it needs training and was not loaded from a folder."""
    estimator = create(name_or_dir, options)
    started = time.perf_counter()
    if estimator.needs_training and not is_saved_estimator(name_or_dir):
        if not train:
            estimator.close()
            raise NeedsTrainingError(f"estimator {name_or_dir!r} must be fitted: pass --train FILE, or a folder that `pricer fit` wrote")
        estimator.fit(train)
    return estimator, time.perf_counter() - started


def _predict_chunk(estimator: Estimator, batch: Sequence[Item]) -> tuple[list[float], list[tuple[float, float]] | None]:
    """Prices, and [low, high] when the estimator gives intervals (an `estimates(items)` method
    whose results have .price, .low and .high: the llm, the ensemble)."""
    estimates = getattr(estimator, "estimates", None)
    if callable(estimates):
        out = list(estimates(batch))
        return [float(e.price) for e in out], [(float(e.low), float(e.high)) for e in out]
    return [float(g) for g in estimator.predict(batch)], None


def predict_with_intervals(estimator: Estimator, items: Sequence[Item], chunk: int = 64,
                           label: str = "") -> tuple[list[float], list[tuple[float, float]] | None]:
    """Predict in chunks so that a progress bar moves on long runs (an LLM, an API)."""
    from tqdm import tqdm

    guesses: list[float] = []
    intervals: list[tuple[float, float]] | None = []
    with tqdm(total=len(items), desc=label or estimator.name or "predict", unit="item", leave=False, disable=None) as bar:
        for start in range(0, len(items), chunk):
            batch = items[start : start + chunk]
            prices, bounds = _predict_chunk(estimator, batch)
            if len(prices) != len(batch):
                raise RuntimeError(f"{label}: {len(prices)} estimates for {len(batch)} items")
            guesses.extend(prices)
            intervals = None if bounds is None or intervals is None else intervals + bounds
            bar.update(len(batch))
    return guesses, intervals


def predict_all(estimator: Estimator, items: Sequence[Item], chunk: int = 64, label: str = "") -> list[float]:
    return predict_with_intervals(estimator, items, chunk, label)[0]


def run_estimator(name_or_dir: str, items: Sequence[Item], options: EstimatorOptions, train: Sequence[Item] | None = None) -> Run:
    estimator, fit_seconds = prepare_estimator(name_or_dir, options, train)
    try:
        started = time.perf_counter()
        guesses, intervals = predict_with_intervals(estimator, items, label=name_or_dir)
        predict_seconds = time.perf_counter() - started
        facts = estimator.describe()
    finally:
        estimator.close()
    truths = [item.price for item in items]
    return Run(name_or_dir, guesses, score(truths, guesses), fit_seconds, predict_seconds, truths, intervals, facts)


def markdown_table(runs: Sequence[Run]) -> str:
    lines = ["| estimator | mean error | RMSLE | hit rate | mean error 95% CI | green / orange / red | fit s | predict s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s, (low, high) = r.score, r.mean_error_ci
        lines.append(f"| {r.estimator} | ${s.mean_error:,.2f} | {s.rmsle:.2f} | {s.hit_rate * 100:.1f}% | ${low:,.2f} to ${high:,.2f} "
                     f"| {s.green} / {s.orange} / {s.red} | {r.fit_seconds:.1f} | {r.predict_seconds:.1f} |")
    return "\n".join(lines)
