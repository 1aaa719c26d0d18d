"""Out-of-fold fitting: every figure reported on the stacking rows comes from a model that never
saw those rows' labels.

- `fit_subset` fits the stack (alpha by K-fold inside its rows) and the conformal offsets from
  K-fold out-of-fold residuals inside its rows: what the bundle ships.
- `crossvalidate` scores that whole procedure honestly: each outer fold's rows are predicted, with
  their intervals, by `fit_subset` run on the other folds only (nested cross-fitting).

With StackRows (app.ensemble.rows) every split keeps a group's rows together, and with `mondrian` the
offsets are one pair per richness class, each from that class's out-of-fold residuals (the pooled pair
for a class with too few rows); a row's interval takes its class's pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.ensemble.conformal import conformal_offsets
from app.ensemble.rows import StackRows, class_offsets, take
from app.ensemble.stack import LinearStack, fit_stack, row_folds


@dataclass(frozen=True)
class SubsetFit:
    stack: LinearStack
    offsets: tuple[float, float]  # conformal (low, high) in log space, from every row
    by_class: dict | None = None  # mondrian: {class: {"offsets", "rows", "pooled"}} (app.ensemble.rows)

    def offsets_for(self, klass: str | None) -> tuple[float, float]:
        return self.offsets if self.by_class is None or klass is None else tuple(self.by_class[klass]["offsets"])

    def to_dict(self) -> dict:
        return {**self.stack.to_dict(), "offsets": list(self.offsets),
                **({"offsets_by_richness": self.by_class} if self.by_class is not None else {})}


def oof_predict(log_prices: np.ndarray, y: np.ndarray, folds: int, seed: int, rows: StackRows | None = None) -> np.ndarray:
    """Each row's log prediction from a stack fitted (alpha included) on the other folds."""
    ids = row_folds(len(y), folds, seed, rows)
    out = np.empty(len(y))
    for k in np.unique(ids):
        train, test = ids != k, ids == k
        out[test] = fit_stack(log_prices[train], y[train], folds, seed, rows=take(rows, train)).predict(
            log_prices[test], take(rows, test))
    return out


def fit_subset(log_prices: np.ndarray, y: np.ndarray, level: float, folds: int = 5, seed: int = 0,
               rows: StackRows | None = None) -> SubsetFit:
    log_prices, y = np.asarray(log_prices, dtype=float), np.asarray(y, dtype=float)
    stack = fit_stack(log_prices, y, folds, seed, rows=rows)
    residuals = y - oof_predict(log_prices, y, folds, seed, rows)
    offsets = conformal_offsets(residuals, level)
    by_class = class_offsets(residuals, rows, level, offsets) if rows is not None and rows.mondrian else None
    return SubsetFit(stack, offsets, by_class)


@dataclass(frozen=True)
class CrossValidated:
    """Per row: the log prediction and the log interval from models fitted without that row's fold."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def dollars(self) -> tuple[list[float], list[float], list[float]]:
        to = lambda a: [max(0.0, float(v)) for v in np.expm1(a)]  # noqa: E731
        return to(self.point), to(self.low), to(self.high)


def crossvalidate(log_prices: np.ndarray, y: np.ndarray, level: float, folds: int = 5, seed: int = 0,
                  rows: StackRows | None = None) -> CrossValidated:
    log_prices, y = np.asarray(log_prices, dtype=float), np.asarray(y, dtype=float)
    # The outer split uses another seed than the inner ones, so the folds do not line up.
    ids = row_folds(len(y), folds, seed + 1, rows)
    point, low, high = np.empty(len(y)), np.empty(len(y)), np.empty(len(y))
    for k in np.unique(ids):
        train, test = ids != k, ids == k
        fitted = fit_subset(log_prices[train], y[train], level, folds, seed, take(rows, train))
        point[test] = fitted.stack.predict(log_prices[test], take(rows, test))
        classes = [None] * int(test.sum()) if rows is None else rows.classes[test]
        offsets = np.array([fitted.offsets_for(c) for c in classes]).reshape(-1, 2)
        low[test] = point[test] + offsets[:, 0]
        high[test] = point[test] + offsets[:, 1]
    return CrossValidated(point, low, high)
