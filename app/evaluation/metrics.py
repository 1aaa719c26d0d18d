"""The course's Tester, exactly: error, RMSLE, hit rate and the green/orange/red bands.

error = |guess - truth|; RMSLE = sqrt(mean((log(truth + 1) - log(guess + 1))^2));
a hit (green) is error < $40 or error / truth < 20%; orange is error < $80 or < 40%; red is worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

GREEN, ORANGE, RED = "green", "orange", "red"


class ScoringError(ValueError):
    """Truths and guesses that cannot be scored (different lengths, negative or non-finite values)."""


def band(truth: float, guess: float) -> str:
    """The course's colour for one estimate."""
    error = abs(guess - truth)
    if error < 40 or error / truth < 0.2:
        return GREEN
    if error < 80 or error / truth < 0.4:
        return ORANGE
    return RED


def squared_log_error(truth: float, guess: float) -> float:
    return (math.log(truth + 1) - math.log(guess + 1)) ** 2


@dataclass(frozen=True)
class Score:
    n: int
    mean_error: float
    rmsle: float
    hit_rate: float  # a fraction: green / n
    green: int
    orange: int
    red: int

    def to_dict(self) -> dict:
        return asdict(self)

    def title(self, name: str) -> str:
        """The course's chart title."""
        return f"{name} Error=${self.mean_error:,.2f} RMSLE={self.rmsle:,.2f} Hits={self.hit_rate * 100:.1f}%"


def _check(truths: Sequence[float], guesses: Sequence[float]) -> None:
    if len(truths) != len(guesses):
        raise ScoringError(f"{len(truths)} truths but {len(guesses)} guesses")
    if not truths:
        raise ScoringError("nothing to score: no items")
    for i, (t, g) in enumerate(zip(truths, guesses, strict=True)):
        if not (math.isfinite(t) and t > 0):
            raise ScoringError(f"item {i}: true price must be a positive number, got {t!r}")
        if not (math.isfinite(g) and g >= 0):
            raise ScoringError(f"item {i}: guess must be a number >= 0, got {g!r}")


def score(truths: Sequence[float], guesses: Sequence[float]) -> Score:
    """Score guesses against true prices the way the course's Tester does."""
    truths = [float(t) for t in truths]
    guesses = [float(g) for g in guesses]
    _check(truths, guesses)
    n, pairs = len(truths), list(zip(truths, guesses, strict=True))
    colours = [band(t, g) for t, g in pairs]
    green = colours.count(GREEN)
    return Score(n=n, mean_error=sum(abs(g - t) for t, g in pairs) / n,
                 rmsle=math.sqrt(sum(squared_log_error(t, g) for t, g in pairs) / n),
                 hit_rate=green / n, green=green, orange=colours.count(ORANGE), red=colours.count(RED))
