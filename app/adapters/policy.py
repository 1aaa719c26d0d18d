"""Which version to serve: pure functions over AdapterVersion rows, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from app.adapters.store import AdapterVersion

INF = float("inf")


def newest_first(versions: Iterable[AdapterVersion]) -> list[AdapterVersion]:
    return sorted(versions, key=lambda v: v.version, reverse=True)


def best_first(versions: Iterable[AdapterVersion]) -> list[AdapterVersion]:
    """Lowest validation mean error first; versions without scores last (newest first among ties)."""
    ordered = newest_first(versions)
    return sorted(ordered, key=lambda v: INF if v.mean_error is None else v.mean_error)


def ranked(versions: Iterable[AdapterVersion], policy: str) -> list[AdapterVersion]:
    """Candidates in the order the policy prefers them (manual prefers the newest, like latest)."""
    return best_first(versions) if policy == "best" else newest_first(versions)


def should_replace(policy: str, candidate: AdapterVersion, active: AdapterVersion | None) -> bool:
    """Whether a newly arrived valid `candidate` should become active in place of `active`."""
    if policy == "manual":
        return False
    if active is None:
        return policy == "latest" or candidate.mean_error is not None
    if policy == "latest":
        return candidate.version > active.version or candidate.name != active.name
    if candidate.mean_error is None:
        return False
    return active.mean_error is None or candidate.mean_error < active.mean_error
