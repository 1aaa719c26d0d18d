"""Which adapter version to serve: app.versions.policy over AdapterVersion rows, no I/O.

`best` ranks by what is served: each version's validation error under the point rule the service
answers with (`point`, the serving spec's); a version never scored under it ranks as unscored."""

from __future__ import annotations

from collections.abc import Iterable

from app.adapters.store import AdapterVersion
from app.versions import policy as versions_policy
from app.versions.policy import Standing


def standing(version: AdapterVersion, point: str | None = None) -> Standing:
    return Standing(version.version, version.served_error(point), version.name)


def best_first(versions: Iterable[AdapterVersion], point: str | None = None) -> list[AdapterVersion]:
    """Lowest served validation error first; unscored versions last (newest first among ties)."""
    return ranked(versions, "best", point)


def ranked(versions: Iterable[AdapterVersion], policy: str, point: str | None = None) -> list[AdapterVersion]:
    """Candidates in the order the policy prefers them (manual prefers the newest, like latest)."""
    return versions_policy.ranked(versions, policy, lambda v: standing(v, point))


def should_replace(policy: str, candidate: AdapterVersion, active: AdapterVersion | None, point: str | None = None) -> bool:
    """Whether a newly arrived valid `candidate` should become active in place of `active` (None:
    the base model, which only a scored version replaces under `best`)."""
    return versions_policy.should_replace(policy, standing(candidate, point),
                                          None if active is None else standing(active, point))
