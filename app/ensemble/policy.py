"""Which ensemble bundle version to serve (PRICER_ENSEMBLE_POLICY): app.versions.policy over bundle
manifests, no I/O. `best` ranks by the recorded cross-validated mean error of the stack over all
of a bundle's members (`cross_validated.stacks` in its manifest, written by `pricer ensemble fit`);
a bundle without that score ranks as unscored (after every scored one)."""

from __future__ import annotations

import math

from app.ensemble.combine import subset_key
from app.versions import policy as versions_policy
from app.versions.policy import Standing


def cv_error(manifest: dict) -> float | None:
    """The full stack's cross-validated mean error, or None when the bundle records none."""
    names = [row.get("name") for row in manifest.get("members", []) if isinstance(row, dict)]
    stacks = (manifest.get("cross_validated") or {}).get("stacks") or {}
    row = stacks.get(subset_key(names)) if names else None
    value = row.get("mean_error") if isinstance(row, dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def standing(manifest: dict) -> Standing:
    """Bundles of one name (the store's root): the name never decides."""
    return Standing(str(manifest.get("version", "")), cv_error(manifest))


def ranked(manifests: list[dict], policy: str) -> list[dict]:
    """Newest first; for `best`, lowest cross-validated error first (unscored last)."""
    return versions_policy.ranked(manifests, policy, standing)


def should_replace(policy: str, candidate: dict, active: dict | None) -> bool:
    """Whether a newly found valid bundle should take over from `active` (None: none answers, and
    any bundle is better than none)."""
    return versions_policy.should_replace(policy, standing(candidate), None if active is None else standing(active),
                                          unscored_over_nothing=True)
