"""The stack: ridge regression in log space over the members' answers plus their min and max (the
course's week 8), with an unpenalised intercept; alpha chosen by K-fold cross-validation inside the
rows it is given (never on the rows it will predict). With StackRows (app.ensemble.rows), folds keep
each group's rows together and the design can carry richness columns.

Plain numpy, so the fitted weights are a handful of numbers saved as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.ensemble.rows import StackRows, extra_columns, penalties, shared_columns, take
from app.model.richness import TITLE

ALPHAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def design(log_prices: np.ndarray, rows: StackRows | None = None) -> np.ndarray:
    """Columns: each member's log price, then the row's min and max (with one member, just it), then
    the rows' richness columns when they ask for them (app.ensemble.rows.extra_columns)."""
    base = base_columns(log_prices)
    extra = extra_columns(base, rows)
    shared = shared_columns(base, rows)
    return np.column_stack([shared, extra]) if extra.shape[1] else shared


def base_columns(log_prices: np.ndarray) -> np.ndarray:
    """Each member's log price, then the row's min and max (with one member, just it)."""
    log_prices = np.asarray(log_prices, dtype=float)
    if log_prices.ndim != 2 or log_prices.shape[1] == 0:
        raise ValueError("design needs an (items x members) matrix with at least one member")
    return log_prices if log_prices.shape[1] == 1 else np.column_stack(
        [log_prices, log_prices.min(axis=1), log_prices.max(axis=1)])


@dataclass(frozen=True)
class LinearStack:
    intercept: float
    coef: tuple[float, ...]  # one per design column
    alpha: float
    richness: str = "none"  # the richness columns it was fitted with (app.ensemble.rows.FEATURES)
    title_alpha: float | None = None  # "titles-apart": the title columns' own penalty

    def predict(self, log_prices: np.ndarray, rows: StackRows | None = None) -> np.ndarray:
        if self.richness != "none" and (rows is None or rows.features != self.richness):
            raise ValueError(f"this stack reads richness columns ({self.richness}): give the rows' classes")
        return self.intercept + design(log_prices, rows if self.richness != "none" else None) @ np.asarray(self.coef)

    def to_dict(self) -> dict:
        out = {"intercept": self.intercept, "coef": list(self.coef), "alpha": self.alpha}
        out |= {"title_alpha": self.title_alpha} if self.title_alpha is not None else {}
        return out | ({"richness": self.richness} if self.richness != "none" else {})


def ridge(log_prices: np.ndarray, y: np.ndarray, alpha: float, rows: StackRows | None = None,
          title_alpha: float | None = None) -> LinearStack:
    """Ridge on centred columns (the intercept is not shrunk; the penalties: app.ensemble.rows.penalties)."""
    x = design(log_prices, rows)
    y = np.asarray(y, dtype=float)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    penalty = penalties(base_columns(log_prices).shape[1], x.shape[1], rows, alpha, title_alpha)
    coef = np.linalg.solve(xc.T @ xc + np.diag(penalty), xc.T @ yc)
    apart = rows is not None and rows.features == "titles-apart"
    return LinearStack(float(y_mean - x_mean @ coef), tuple(float(c) for c in coef), float(alpha),
                       rows.features if rows is not None else "none",
                       float(alpha if title_alpha is None else title_alpha) if apart else None)


def fold_ids(n: int, folds: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Fold of each row: a seeded permutation, independent of the labels. With `groups`, the groups
    (in order of first appearance) get the folds of as many rows, and each row its group's: groups
    0..n-1, one row each, give exactly the ungrouped folds."""
    if groups is not None:
        _, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=int)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        return fold_ids(len(first), folds, seed)[rank[inverse.ravel()]]
    if n < 2:
        raise ValueError(f"cross-fitting needs at least 2 rows, got {n}")
    folds = max(2, min(folds, n))
    ids = np.empty(n, dtype=int)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return ids


def row_folds(n: int, folds: int, seed: int, rows: StackRows | None) -> np.ndarray:
    return fold_ids(n, folds, seed, None if rows is None else rows.groups)


def choose_alphas(log_prices: np.ndarray, y: np.ndarray, folds: int, seed: int,
                  alphas: Sequence[float] = ALPHAS, rows: StackRows | None = None) -> tuple[float, float | None]:
    """The alpha with the lowest K-fold squared error in log space, on these rows only; under
    "titles-apart" also the title columns' own (the lowest error on the title rows; the first one is
    then scored on the other rows only: neither set of rows moves the other's weights)."""
    ids = row_folds(len(y), folds, seed, rows)
    apart = rows is not None and rows.features == "titles-apart"
    titles = rows.classes == TITLE if apart else np.zeros(len(y), dtype=bool)
    errors = []  # per alpha: (squared error on the other rows, on the title rows)
    for alpha in alphas:
        squared = np.zeros(len(y))
        for k in np.unique(ids):
            train, test = ids != k, ids == k
            pred = ridge(log_prices[train], y[train], alpha, take(rows, train)).predict(log_prices[test], take(rows, test))
            squared[test] = (pred - y[test]) ** 2
        errors.append((float(squared[~titles].sum()), float(squared[titles].sum())))
    if not apart:
        return _lowest(alphas, [other + title for other, title in errors]), None
    return _lowest(alphas, [e[0] for e in errors]), _lowest(alphas, [e[1] for e in errors])


def _lowest(alphas: Sequence[float], errors: Sequence[float]) -> float:
    best, best_err = alphas[0], np.inf
    for alpha, err in zip(alphas, errors):
        if err < best_err - 1e-12:  # the first of equals
            best, best_err = alpha, err
    return float(best)


def fit_stack(log_prices: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0,
              alphas: Sequence[float] = ALPHAS, rows: StackRows | None = None) -> LinearStack:
    log_prices, y = np.asarray(log_prices, dtype=float), np.asarray(y, dtype=float)
    if len(alphas) == 1:
        return ridge(log_prices, y, float(alphas[0]), rows)
    alpha, title_alpha = choose_alphas(log_prices, y, folds, seed, alphas, rows)
    return ridge(log_prices, y, alpha, rows, title_alpha)
