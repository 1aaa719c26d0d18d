"""Out-of-fold fitting: every figure reported on the stacking rows comes from a model that never
saw those rows' labels.

- `fit_subset` fits the stack (alpha by K-fold inside its rows) and the conformal offsets from
  K-fold out-of-fold residuals inside its rows: what the bundle ships.
- `crossvalidate` scores that whole procedure honestly: each outer fold's rows are predicted, with
  their intervals, by `fit_subset` run on the other folds only (nested cross-fitting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.ensemble.conformal import conformal_offsets
from app.ensemble.stack import LinearStack, fit_stack, fold_ids


@dataclass(frozen=True)
class SubsetFit:
    stack: LinearStack
    offsets: tuple[float, float]  # conformal (low, high) in log space

    def to_dict(self) -> dict:
        return {**self.stack.to_dict(), "offsets": list(self.offsets)}


def oof_predict(log_prices: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's log prediction from a stack fitted (alpha included) on the other folds."""
    ids = fold_ids(len(y), folds, seed)
    out = np.empty(len(y))
    for k in np.unique(ids):
        train, test = ids != k, ids == k
        out[test] = fit_stack(log_prices[train], y[train], folds, seed).predict(log_prices[test])
    return out


def fit_subset(log_prices: np.ndarray, y: np.ndarray, level: float, folds: int = 5, seed: int = 0) -> SubsetFit:
    log_prices, y = np.asarray(log_prices, dtype=float), np.asarray(y, dtype=float)
    stack = fit_stack(log_prices, y, folds, seed)
    offsets = conformal_offsets(y - oof_predict(log_prices, y, folds, seed), level)
    return SubsetFit(stack, offsets)


@dataclass(frozen=True)
class CrossValidated:
    """Per row: the log prediction and the log interval from models fitted without that row's fold."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def dollars(self) -> tuple[list[float], list[float], list[float]]:
        to = lambda a: [max(0.0, float(v)) for v in np.expm1(a)]  # noqa: E731
        return to(self.point), to(self.low), to(self.high)


def crossvalidate(log_prices: np.ndarray, y: np.ndarray, level: float, folds: int = 5, seed: int = 0) -> CrossValidated:
    log_prices, y = np.asarray(log_prices, dtype=float), np.asarray(y, dtype=float)
    # The outer split uses another seed than the inner ones, so the folds do not line up.
    ids = fold_ids(len(y), folds, seed + 1)
    point, low, high = np.empty(len(y)), np.empty(len(y)), np.empty(len(y))
    for k in np.unique(ids):
        train, test = ids != k, ids == k
        fitted = fit_subset(log_prices[train], y[train], level, folds, seed)
        point[test] = fitted.stack.predict(log_prices[test])
        low[test] = point[test] + fitted.offsets[0]
        high[test] = point[test] + fitted.offsets[1]
    return CrossValidated(point, low, high)
