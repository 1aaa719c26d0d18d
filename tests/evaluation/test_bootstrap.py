"""Bootstrap intervals, paired differences and coverage on hand-made cases."""

from __future__ import annotations

import pytest

from app.evaluation.bootstrap import bootstrap_mean_ci, coverage, paired_difference


def test_ci_of_a_constant_is_the_constant():
    assert bootstrap_mean_ci([7.0] * 50) == (7.0, 7.0)


def test_ci_of_a_coin_matches_the_normal_approximation():
    # 400 values, half 0 and half 1: mean 0.5, standard error 0.025, so about 0.451 to 0.549.
    low, high = bootstrap_mean_ci([0.0, 1.0] * 200, resamples=4000)
    assert low == pytest.approx(0.451, abs=0.01)
    assert high == pytest.approx(0.549, abs=0.01)
    assert low < 0.5 < high


def test_ci_is_seeded():
    values = [float(v % 13) for v in range(100)]
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    assert bootstrap_mean_ci(values, seed=3) != bootstrap_mean_ci(values, seed=4)


def test_ci_refuses_nothing():
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean_ci([])


def test_coverage_counts_bounds_as_inside():
    truths = [10.0, 20.0, 30.0, 40.0]
    lows = [5.0, 21.0, 30.0, 0.0]
    highs = [15.0, 25.0, 30.0, 39.0]
    assert coverage(truths, lows, highs) == 0.5


def test_coverage_refuses_unequal_lengths():
    with pytest.raises(ValueError):
        coverage([1.0, 2.0], [0.0], [3.0, 3.0])


def test_paired_difference_a_consistently_better():
    b = [float(10 + i % 7) for i in range(60)]
    a = [e - 3.0 for e in b]
    result = paired_difference(a, b)
    assert result.difference == pytest.approx(-3.0)
    assert result.ci == pytest.approx((-3.0, -3.0))
    assert result.verdict == "a better"


def test_paired_difference_of_noise_is_not_significant():
    a = [10.0, 12.0] * 30
    b = [12.0, 10.0] * 30
    result = paired_difference(a, b)
    assert result.difference == 0.0
    assert result.ci[0] < 0 < result.ci[1]
    assert result.verdict == "no significant difference"
    assert paired_difference(b[:], [e - 5 for e in b]).verdict == "b better"


def test_ci_of_a_skewed_sample_covers_its_mean_and_leans_right():
    import numpy as np

    errors = np.random.default_rng(7).lognormal(3.0, 1.2, size=250)  # dollar errors: a long right tail
    mean = float(errors.mean())
    low, high = bootstrap_mean_ci(errors.tolist(), seed=11)
    assert low < mean < high
    assert high - mean > 1.25 * (mean - low)  # BCa follows the skew (the percentile interval: 1.12 here)
    assert bootstrap_mean_ci(errors.tolist(), seed=11) == (low, high)  # reproducible with its seed
    assert bootstrap_mean_ci(errors.tolist(), seed=12) != (low, high)


def test_many_items_get_the_percentile_interval_quickly():
    import time

    import numpy as np

    values = np.random.default_rng(3).exponential(40.0, size=30_000).tolist()  # past BCA_MAX_ITEMS
    started = time.perf_counter()
    low, high = bootstrap_mean_ci(values, resamples=500)
    assert low < float(np.mean(values)) < high and high - low < 2.0
    assert time.perf_counter() - started < 10


def test_all_but_constant_values_still_get_an_interval():
    low, high = bootstrap_mean_ci([0.1 + 0.2] * 30 + [0.3] * 30)  # equal but for float rounding
    assert low == pytest.approx(0.3) and high == pytest.approx(0.3)


def test_paired_rmsle_difference_of_the_same_items():
    import numpy as np
    from app.evaluation.bootstrap import paired_rmsle_difference

    rng = np.random.default_rng(0)
    truths = rng.lognormal(4, 1, 300)
    close, far = truths * np.exp(rng.normal(0, 0.2, 300)), truths * np.exp(rng.normal(0, 0.8, 300))
    a, b, (low, high) = paired_rmsle_difference(truths, close, far)
    assert a == pytest.approx(np.sqrt(np.mean((np.log1p(close) - np.log1p(truths)) ** 2)))
    assert a < b and low <= a - b <= high < 0  # clearly better: the interval excludes zero
    same_a, same_b, (s_low, s_high) = paired_rmsle_difference(truths, close, close)
    assert same_a == same_b and s_low == s_high == 0
