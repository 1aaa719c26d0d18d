"""Which ensemble bundle version to serve (PRICER_ENSEMBLE_POLICY): pure functions over bundle
manifests, no I/O. `best` ranks by the recorded cross-validated mean error of the stack over all
of a bundle's members (`cross_validated.stacks` in its manifest, written by `pricer ensemble fit`);
a bundle without that score ranks as unscored (after every scored one)."""

from __future__ import annotations

import math

from app.ensemble.combine import subset_key

INF = float("inf")


def cv_error(manifest: dict) -> float | None:
    """The full stack's cross-validated mean error, or None when the bundle records none."""
    names = [row.get("name") for row in manifest.get("members", []) if isinstance(row, dict)]
    stacks = (manifest.get("cross_validated") or {}).get("stacks") or {}
    row = stacks.get(subset_key(names)) if names else None
    value = row.get("mean_error") if isinstance(row, dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def ranked(manifests: list[dict], policy: str) -> list[dict]:
    """Newest first; for `best`, lowest cross-validated error first (unscored last)."""
    newest = sorted(manifests, key=lambda m: str(m.get("version", "")), reverse=True)
    if policy != "best":
        return newest
    return sorted(newest, key=lambda m: INF if cv_error(m) is None else cv_error(m))


def should_replace(policy: str, candidate: dict, active: dict | None) -> bool:
    """Whether a newly found valid bundle should take over from `active` (None: none answers)."""
    if policy == "manual":
        return False
    if active is None:
        return True
    if policy == "latest":
        return str(candidate.get("version", "")) > str(active.get("version", ""))
    mine, theirs = cv_error(candidate), cv_error(active)
    return mine is not None and (theirs is None or mine < theirs)
