"""Which version to serve (PRICER_ADAPTER_POLICY, PRICER_ENSEMBLE_POLICY): `manual`, `latest`, `best`.
Pure functions, no I/O, over any kind's rows: each kind says how a row stands (`Standing`: its
version name, which sorts chronologically, and the score `best` ranks by, lower being better).

- ranked: newest first; for `best`, lowest score first, unscored last (newest first among ties).
  `manual` ranks like `latest` (it matters where something must be picked, e.g. at start).
- should_replace: whether a newly found valid version takes over from the active one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

INF = float("inf")
T = TypeVar("T")


@dataclass(frozen=True)
class Standing:
    version: str
    error: float | None = None  # what `best` ranks by (lower is better); None: unscored
    name: str = ""  # under `latest`, a version of another name than the active one replaces it


def ranked(rows: Iterable[T], policy: str, standing: Callable[[T], Standing]) -> list[T]:
    """`rows` in the order the policy prefers them."""
    newest = sorted(rows, key=lambda row: standing(row).version, reverse=True)
    if policy != "best":
        return newest

    def score(row: T) -> float:
        error = standing(row).error
        return INF if error is None else error

    return sorted(newest, key=score)


def should_replace(policy: str, candidate: Standing, active: Standing | None, unscored_over_nothing: bool = False) -> bool:
    """Whether `candidate` should become active in place of `active` (None: no version answers;
    `unscored_over_nothing`: under `best`, even an unscored version is better than none)."""
    if policy == "manual":
        return False
    if active is None:
        return policy == "latest" or candidate.error is not None or unscored_over_nothing
    if policy == "latest":
        return candidate.version > active.version or candidate.name != active.name
    if candidate.error is None:
        return False
    return active.error is None or candidate.error < active.error
