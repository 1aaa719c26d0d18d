"""Out-of-fold fitting never sees a row's own label; conformal offsets on a hand-made case."""

from __future__ import annotations

import numpy as np
import pytest

from app.ensemble.conformal import conformal_offsets, interval
from app.ensemble.crossfit import crossvalidate, fit_subset, oof_predict
from app.ensemble.stack import design, ridge


def _data(n=60, members=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(4.5, 1.0, n)
    logs = np.column_stack([y + rng.normal(0, 0.3 + 0.2 * m, n) for m in range(members)])
    return logs, y


def test_changing_a_rows_label_never_changes_its_own_out_of_fold_answer():
    logs, y = _data()
    before_oof = oof_predict(logs, y, 5, 0)
    before = crossvalidate(logs, y, 0.8, 5, 0)
    for row in (0, 17, 59):
        poisoned = y.copy()
        poisoned[row] = 1000.0  # a label that would drag any fit that saw it
        assert oof_predict(logs, poisoned, 5, 0)[row] == before_oof[row]
        after = crossvalidate(logs, poisoned, 0.8, 5, 0)
        # Its point AND its interval come from stacks and residuals fitted without it ...
        assert (after.point[row], after.low[row], after.high[row]) == (before.point[row], before.low[row], before.high[row])
        # ... while rows in other folds, whose fits did see it, move: the poison is strong enough to show.
        assert not np.allclose(after.point, before.point)


def test_in_sample_fit_would_have_seen_it():
    """The control for the test above: an in-sample fit's answer for the row does move."""
    logs, y = _data()
    poisoned = y.copy()
    poisoned[17] = 1000.0
    assert ridge(logs, poisoned, 1.0).predict(logs)[17] != pytest.approx(ridge(logs, y, 1.0).predict(logs)[17])


def test_design_adds_min_and_max():
    logs = np.array([[1.0, 3.0, 2.0]])
    assert design(logs).tolist() == [[1.0, 3.0, 2.0, 1.0, 3.0]]
    assert design(np.array([[2.0]])).tolist() == [[2.0]]


def test_ridge_recovers_a_linear_combination():
    logs, _ = _data(200, 2, seed=3)
    y = 0.5 + 0.7 * logs[:, 0] + 0.2 * logs[:, 1]
    stack = ridge(logs, y, 1e-9)
    assert np.allclose(stack.predict(logs), y, atol=1e-6)


def test_conformal_offsets_hand_made():
    residuals = [float(v) for v in range(-5, 5)]  # -5 .. 4, n = 10
    # level 0.8: ranks floor(11 * 0.1) = 1 and ceil(11 * 0.9) = 10 -> the min and the max.
    assert conformal_offsets(residuals, 0.8) == (-5.0, 4.0)
    # level 0.5: ranks floor(11 * 0.25) = 2 and ceil(11 * 0.75) = 9.
    assert conformal_offsets(residuals, 0.5) == (-4.0, 3.0)
    low, high = interval(np.log1p(99.0), (-0.1, 0.2))
    assert low == pytest.approx(100 * np.exp(-0.1) - 1) and high == pytest.approx(100 * np.exp(0.2) - 1)


def test_cross_validated_coverage_is_near_nominal():
    logs, y = _data(400, 3, seed=1)
    cv = crossvalidate(logs, y, 0.8, 5, 0)
    inside = np.mean((cv.low <= y) & (y <= cv.high))
    assert 0.72 <= inside <= 0.88
    fitted = fit_subset(logs, y, 0.8)
    assert fitted.offsets[0] < 0 < fitted.offsets[1]
