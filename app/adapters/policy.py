"""Which version to serve: pure functions over AdapterVersion rows, no I/O.

`best` ranks by what is served: each version's validation error under the point rule the service
answers with (`point`, the serving spec's); a version never scored under it ranks as unscored."""

from __future__ import annotations

from collections.abc import Iterable

from app.adapters.store import AdapterVersion

INF = float("inf")


def newest_first(versions: Iterable[AdapterVersion]) -> list[AdapterVersion]:
    return sorted(versions, key=lambda v: v.version, reverse=True)


def best_first(versions: Iterable[AdapterVersion], point: str | None = None) -> list[AdapterVersion]:
    """Lowest served validation error first; unscored versions last (newest first among ties)."""
    ordered = newest_first(versions)

    def key(v: AdapterVersion) -> float:
        error = v.served_error(point)
        return INF if error is None else error

    return sorted(ordered, key=key)


def ranked(versions: Iterable[AdapterVersion], policy: str, point: str | None = None) -> list[AdapterVersion]:
    """Candidates in the order the policy prefers them (manual prefers the newest, like latest)."""
    return best_first(versions, point) if policy == "best" else newest_first(versions)


def should_replace(policy: str, candidate: AdapterVersion, active: AdapterVersion | None, point: str | None = None) -> bool:
    """Whether a newly arrived valid `candidate` should become active in place of `active`."""
    if policy == "manual":
        return False
    mine = candidate.served_error(point)
    if active is None:
        return policy == "latest" or mine is not None
    if policy == "latest":
        return candidate.version > active.version or candidate.name != active.name
    if mine is None:
        return False
    theirs = active.served_error(point)
    return theirs is None or mine < theirs
