"""Running an estimator over items: create (or load), fit when it must, predict with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.estimators.base import ESTIMATOR_FILE, Estimator, EstimatorOptions, create
from app.evaluation.metrics import Score, score
from app.items import Item


class NeedsTrainingError(ValueError):
    """An estimator that must be fitted was asked to predict without training items."""


@dataclass
class Run:
    estimator: str
    guesses: list[float]
    score: Score
    fit_seconds: float
    predict_seconds: float

    def to_dict(self) -> dict:
        return {
            "estimator": self.estimator,
            **self.score.to_dict(),
            "fit_seconds": round(self.fit_seconds, 3),
            "predict_seconds": round(self.predict_seconds, 3),
        }


def is_saved_estimator(name_or_dir: str) -> bool:
    return (Path(name_or_dir) / ESTIMATOR_FILE).is_file()


def prepare_estimator(
    name_or_dir: str, options: EstimatorOptions, train: Sequence[Item] | None
) -> tuple[Estimator, float]:
    """The estimator, fitted on `train` if it needs training and was not loaded from a folder."""
    estimator = create(name_or_dir, options)
    started = time.perf_counter()
    if estimator.needs_training and not is_saved_estimator(name_or_dir):
        if not train:
            estimator.close()
            raise NeedsTrainingError(
                f"estimator {name_or_dir!r} must be fitted: pass --train FILE, or a folder that `pricer fit` wrote"
            )
        estimator.fit(train)
    return estimator, time.perf_counter() - started


def predict_all(estimator: Estimator, items: Sequence[Item], chunk: int = 64, label: str = "") -> list[float]:
    """Predict in chunks so that a progress bar moves on long runs (an LLM, an API)."""
    from tqdm import tqdm

    guesses: list[float] = []
    with tqdm(total=len(items), desc=label or estimator.name or "predict", unit="item", leave=False, disable=None) as bar:
        for start in range(0, len(items), chunk):
            batch = items[start : start + chunk]
            out = list(estimator.predict(batch))
            if len(out) != len(batch):
                raise RuntimeError(f"{label}: {len(out)} estimates for {len(batch)} items")
            guesses.extend(float(g) for g in out)
            bar.update(len(batch))
    return guesses


def run_estimator(
    name_or_dir: str, items: Sequence[Item], options: EstimatorOptions, train: Sequence[Item] | None = None
) -> Run:
    estimator, fit_seconds = prepare_estimator(name_or_dir, options, train)
    try:
        started = time.perf_counter()
        guesses = predict_all(estimator, items, label=name_or_dir)
        predict_seconds = time.perf_counter() - started
    finally:
        estimator.close()
    scored = score([item.price for item in items], guesses)
    return Run(name_or_dir, guesses, scored, fit_seconds, predict_seconds)


def markdown_table(runs: Sequence[Run]) -> str:
    lines = [
        "| estimator | mean error | RMSLE | hit rate | green / orange / red | fit s | predict s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s = r.score
        lines.append(
            f"| {r.estimator} | ${s.mean_error:,.2f} | {s.rmsle:.2f} | {s.hit_rate * 100:.1f}% "
            f"| {s.green} / {s.orange} / {s.red} | {r.fit_seconds:.1f} | {r.predict_seconds:.1f} |"
        )
    return "\n".join(lines)
