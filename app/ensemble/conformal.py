"""Split-conformal offsets in log space from out-of-fold residuals (truth - prediction).

With n residuals and level 1 - a, the lower offset is the floor((n + 1) a/2)-th smallest residual and
the upper one the ceil((n + 1)(1 - a/2))-th: the finite-sample rule, each tail holding at most a/2.
The interval of a new answer p is [p + low, p + high] in log(1 + price), back to dollars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def conformal_offsets(residuals: Sequence[float], level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    r = sorted(float(v) for v in residuals)
    n = len(r)
    if n == 0:
        raise ValueError("conformal offsets need at least one residual")
    tail = (1 - level) / 2
    lo_rank = math.floor((n + 1) * tail)
    hi_rank = math.ceil((n + 1) * (1 - tail))
    low = r[max(lo_rank, 1) - 1]
    high = r[min(hi_rank, n) - 1]
    return low, high


def interval(log_point: float, offsets: tuple[float, float]) -> tuple[float, float]:
    """Dollars [low, high] around a log(1 + price) answer; never below zero."""
    low, high = offsets
    return max(0.0, math.expm1(log_point + low)), max(0.0, math.expm1(log_point + high))
