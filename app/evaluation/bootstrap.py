"""Honest comparisons: seeded bootstrap confidence intervals over items, paired differences, coverage.

A 250-item mean error moves by about plus or minus $10 from one sample of items to another, so
every mean error carries a 95% interval, and one estimator is "better" than another only when the
paired interval of the per-item difference (same items, both estimators) excludes zero.

The intervals are scipy's BCa bootstrap: dollar errors are right-skewed (a few items priced
hundreds of dollars off), and BCa corrects the percentile interval for that skew and its bias.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
# BCa's jackknife costs items squared: past this many items, the plain percentile interval (by
# then the skew of the mean, and so BCa's correction, is a matter of cents).
BCA_MAX_ITEMS = 20_000


def bootstrap_mean_ci(values: Sequence[float], resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> tuple[float, float]:
    """BCa bootstrap interval of the mean (scipy.stats.bootstrap), items resampled with replacement."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("a confidence interval needs at least one value")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if data.min() == data.max():  # every resample has the same mean (and BCa would divide by zero)
        return float(data[0]), float(data[0])
    options = dict(n_resamples=resamples, confidence_level=level, vectorized=True,
                   batch=max(1, 2_000_000 // data.size))  # a million items: no resamples x n matrix at once
    for method in ("BCa", "percentile") if data.size <= BCA_MAX_ITEMS else ("percentile",):
        with warnings.catch_warnings():  # all but constant items: BCa's correction is 0/0, a NaN bound
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = bootstrap((data,), np.mean, method=method, rng=np.random.default_rng(seed), **options).confidence_interval
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            break
    return float(ci.low), float(ci.high)


def coverage(truths: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> float:
    """The share of truths inside their [low, high] (bounds included)."""
    if not (len(truths) == len(lows) == len(highs)):
        raise ValueError(f"{len(truths)} truths, {len(lows)} lows, {len(highs)} highs")
    if not truths:
        raise ValueError("coverage of no items")
    return sum(lo <= t <= hi for t, lo, hi in zip(truths, lows, highs, strict=True)) / len(truths)


@dataclass(frozen=True)
class PairedDifference:
    """mean(error_a - error_b) over the same items, with its bootstrap interval."""

    n: int
    mean_a: float
    mean_b: float
    difference: float
    ci: tuple[float, float]
    level: float = LEVEL

    @property
    def verdict(self) -> str:
        """'a better', 'b better' or 'no significant difference' (the interval holds zero)."""
        low, high = self.ci
        return "a better" if high < 0 else "b better" if low > 0 else "no significant difference"

    def to_dict(self) -> dict:
        return {"n": self.n, "mean_error_a": self.mean_a, "mean_error_b": self.mean_b, "difference": self.difference,
                "difference_ci": list(self.ci), "level": self.level, "verdict": self.verdict}


def paired_difference(errors_a: Sequence[float], errors_b: Sequence[float], resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = SEED) -> PairedDifference:
    """Per-item differences of two estimators' absolute errors on the same items: their mean and its
    BCa interval (resampling the differences resamples the items, both estimators' errors together)."""
    if len(errors_a) != len(errors_b):
        raise ValueError(f"paired errors need the same items: {len(errors_a)} against {len(errors_b)}")
    diffs = [float(a) - float(b) for a, b in zip(errors_a, errors_b, strict=True)]
    if not all(math.isfinite(d) for d in diffs):
        raise ValueError("errors must be finite numbers")
    n = len(diffs)
    return PairedDifference(n, sum(map(float, errors_a)) / n, sum(map(float, errors_b)) / n, sum(diffs) / n,
                            bootstrap_mean_ci(diffs, resamples, level, seed), level)


def paired_rmsle_difference(truths: Sequence[float], guesses_a: Sequence[float], guesses_b: Sequence[float],
                            resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> tuple[float, float, tuple[float, float]]:
    """RMSLE of two estimators on the same items and the percentile bootstrap interval of their
    difference (a - b), the items resampled together (RMSLE is not a mean of per-item values)."""
    import numpy as np
    from scipy.stats import bootstrap

    t = np.log1p(np.asarray(truths, dtype=float))
    sle_a = (np.log1p(np.asarray(guesses_a, dtype=float)) - t) ** 2
    sle_b = (np.log1p(np.asarray(guesses_b, dtype=float)) - t) ** 2

    def statistic(a, b, axis=-1):
        return np.sqrt(a.mean(axis=axis)) - np.sqrt(b.mean(axis=axis))

    ci = bootstrap((sle_a, sle_b), statistic, paired=True, vectorized=True, n_resamples=resamples,
                   confidence_level=level, method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return float(np.sqrt(sle_a.mean())), float(np.sqrt(sle_b.mean())), (float(ci.low), float(ci.high))
