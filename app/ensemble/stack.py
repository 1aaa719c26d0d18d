"""The stack: ridge regression in log space over the members' answers plus their min and max (the
course's week 8), with an unpenalised intercept; alpha chosen by K-fold cross-validation inside the
rows it is given (never on the rows it will predict).

Plain numpy, so the fitted weights are a handful of numbers saved as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def design(log_prices: np.ndarray) -> np.ndarray:
    """Columns: each member's log price, then the row's min and max (with one member, just it)."""
    log_prices = np.asarray(log_prices, dtype=float)
    if log_prices.ndim != 2 or log_prices.shape[1] == 0:
        raise ValueError("design needs an (items x members) matrix with at least one member")
    if log_prices.shape[1] == 1:
        return log_prices
    return np.column_stack([log_prices, log_prices.min(axis=1), log_prices.max(axis=1)])


@dataclass(frozen=True)
class LinearStack:
    intercept: float
    coef: tuple[float, ...]  # one per design column
    alpha: float

    def predict(self, log_prices: np.ndarray) -> np.ndarray:
        return self.intercept + design(log_prices) @ np.asarray(self.coef)

    def to_dict(self) -> dict:
        return {"intercept": self.intercept, "coef": list(self.coef), "alpha": self.alpha}


def ridge(log_prices: np.ndarray, y: np.ndarray, alpha: float) -> LinearStack:
    """Ridge on centred columns (the intercept is not shrunk)."""
    x = design(log_prices)
    y = np.asarray(y, dtype=float)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return LinearStack(float(y_mean - x_mean @ coef), tuple(float(c) for c in coef), float(alpha))


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold of each row: a seeded permutation, independent of the labels."""
    if n < 2:
        raise ValueError(f"cross-fitting needs at least 2 rows, got {n}")
    folds = max(2, min(folds, n))
    ids = np.empty(n, dtype=int)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return ids


def choose_alpha(log_prices: np.ndarray, y: np.ndarray, folds: int, seed: int,
                 alphas: Sequence[float] = ALPHAS) -> float:
    """The alpha with the lowest K-fold squared error in log space, on these rows only."""
    ids = fold_ids(len(y), folds, seed)
    best, best_err = alphas[0], np.inf
    for alpha in alphas:
        err = 0.0
        for k in np.unique(ids):
            train, test = ids != k, ids == k
            pred = ridge(log_prices[train], y[train], alpha).predict(log_prices[test])
            err += float(((pred - y[test]) ** 2).sum())
        if err < best_err - 1e-12:
            best, best_err = alpha, err
    return float(best)


def fit_stack(log_prices: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0,
              alphas: Sequence[float] = ALPHAS) -> LinearStack:
    log_prices, y = np.asarray(log_prices, dtype=float), np.asarray(y, dtype=float)
    alpha = choose_alpha(log_prices, y, folds, seed, alphas) if len(alphas) > 1 else float(alphas[0])
    return ridge(log_prices, y, alpha)
