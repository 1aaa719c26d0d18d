"""Fitting the ensemble from the members' answers on the stacking rows: one stack per member subset
(for serving with a member missing), and cross-validated scores (nested, never in-sample). `rows`
(app.ensemble.rows.StackRows, optional): the rows' richness classes and groups; the table then scores
the original rows, the title-only copies ("titles") and each class ("by_richness") apart."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from app.ensemble.combine import subset_key
from app.ensemble.crossfit import crossvalidate, fit_subset
from app.ensemble.rows import StackRows
from app.model.richness import CLASSES
from app.evaluation.bootstrap import bootstrap_mean_ci, coverage
from app.evaluation.metrics import score


def _log_matrix(answers: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    return np.log1p(np.column_stack([np.clip(np.asarray(answers[n], dtype=float), 0, None) for n in names]))


def subsets(names: Sequence[str], max_members: int | None = None) -> list[tuple[str, ...]]:
    """Every non-empty subset, members kept in the stack's order."""
    top = len(names) if max_members is None else min(max_members, len(names))
    out = [combo for size in range(1, top + 1) for combo in itertools.combinations(names, size)]
    if tuple(names) not in out:
        out.append(tuple(names))
    return out


def fit_stacks(answers: Mapping[str, Sequence[float]], truths: Sequence[float], level: float, folds: int,
               seed: int, max_members: int | None = None, rows: StackRows | None = None) -> dict:
    """stack.json's content: member order, level and a fitted stack for each member subset."""
    names = list(answers)
    y = np.log1p(np.asarray(truths, dtype=float))
    table = {}
    for combo in subsets(names, max_members):
        table[subset_key(combo)] = fit_subset(_log_matrix(answers, combo), y, level, folds, seed, rows).to_dict()
    return {"members": names, "level": level, "folds": folds, "seed": seed, "subsets": table}


def scores(truths: Sequence[float], guesses: Sequence[float], lows=None, highs=None) -> dict:
    s = score(truths, guesses)
    out = {"n": s.n, "mean_error": s.mean_error,
           "mean_error_ci": list(bootstrap_mean_ci([abs(g - t) for t, g in zip(truths, guesses, strict=True)])),
           "rmsle": s.rmsle, "hit_rate": s.hit_rate}
    if lows is not None:
        out["coverage"] = coverage(truths, lows, highs)
    return out


def out_of_fold(answers: Mapping[str, Sequence[float]], truths: Sequence[float], combo: Sequence[str],
                level: float, folds: int, seed: int,
                rows: StackRows | None = None) -> tuple[list[float], list[float], list[float]]:
    """The stack over `combo`: each row's point, low and high in dollars, from a stack (and offsets)
    fitted on the other folds only (nested, app.ensemble.crossfit.crossvalidate)."""
    y = np.log1p(np.asarray(truths, dtype=float))
    return crossvalidate(_log_matrix(answers, combo), y, level, folds, seed, rows).dollars()


def cross_validated(answers: Mapping[str, Sequence[float]], truths: Sequence[float], combo: Sequence[str],
                    level: float, folds: int, seed: int) -> tuple[dict, list[float]]:
    """Scores of the stack over `combo`, each row predicted by a stack fitted on the other folds."""
    point, low, high = out_of_fold(answers, truths, combo, level, folds, seed)
    return scores(truths, point, low, high), point


def _part(mask, values):
    return [v for v, keep in zip(values, mask, strict=True) if keep]


def report_table(answers: Mapping[str, Sequence[float]], truths: Sequence[float], level: float, folds: int,
                 seed: int, rows: StackRows | None = None) -> dict:
    """Each member alone (raw answers), the full stack, and the stack without each member; with
    `rows`, on the original rows, and apart on the title-only copies ("titles") and each class."""
    names = list(answers)
    combos = [tuple(names)] + ([tuple(m for m in names if m != left) for left in names] if len(names) > 2 else [])
    answered = {combo: out_of_fold(answers, truths, combo, level, folds, seed, rows) for combo in combos}

    def section(mask: np.ndarray) -> dict:
        truth = _part(mask, truths)
        return {"members": {n: scores(truth, _part(mask, answers[n])) for n in names},
                "stacks": {subset_key(c): scores(truth, *(_part(mask, v) for v in answered[c])) for c in combos}}

    if rows is None:
        return section(np.ones(len(truths), dtype=bool))
    table = section(~rows.copies)
    if rows.copies.any():
        table["titles"] = {"n": int(rows.copies.sum()), **section(rows.copies)}
    present = [c for c in CLASSES if (rows.classes == c).any()]
    table["by_richness"] = {c: {"n": int((rows.classes == c).sum()), **section(rows.classes == c)} for c in present}
    return table
