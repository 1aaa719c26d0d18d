"""`best` ranks by what is served: the validation error under the served point rule."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from app.adapters import policy
from app.adapters.manifest import Manifest, ValidationScores
from app.adapters.store import AdapterVersion


def version(name: str, error: float, point: str | None, by_point: dict | None = None, decoding: str | None = None) -> AdapterVersion:
    scores = ValidationScores(n=100, mean_error=error, rmsle=1.0, hit_rate=0.3, by_point=by_point or {}, decoding=decoding)
    manifest = Manifest(
        name="pa", version=name, base_model="b", base_fingerprint="sha256:x", lora_rank=8, lora_alpha=16,
        target_modules=["q_proj"], data_hash="sha256:d", steps=1, validation=scores, point_rule=point,
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    return AdapterVersion("pa", name, Path(name), manifest)


def test_best_ranks_by_the_served_point_rule():
    # v1 is better by its mean, v2 by its median: a median-serving service must prefer v2.
    v1 = version("v1", 100.0, "mean", {"mean": {"mean_error": 100.0}, "median": {"mean_error": 130.0}})
    v2 = version("v2", 120.0, "mean", {"mean": {"mean_error": 120.0}, "median": {"mean_error": 110.0}})
    assert [v.version for v in policy.ranked([v1, v2], "best", point="mean")] == ["v1", "v2"]
    assert [v.version for v in policy.ranked([v1, v2], "best", point="median")] == ["v2", "v1"]
    assert policy.should_replace("best", v2, v1, point="median")
    assert not policy.should_replace("best", v2, v1, point="mean")


def test_recorded_rule_by_manifest_or_decoding_name_and_unscored_versions():
    served = version("v1", 90.0, "median")
    legacy = version("v2", 80.0, None, decoding="app.model.decoding:median")  # older manifests name it in `decoding`
    unknown = version("v3", 10.0, "mean")  # never scored under the median: ranks as unscored
    assert served.served_error("median") == 90.0 and legacy.served_error("median") == 80.0
    assert unknown.served_error("median") is None and unknown.served_error(None) == 10.0
    assert [v.version for v in policy.best_first([served, legacy, unknown], "median")] == ["v2", "v1", "v3"]
    assert not policy.should_replace("best", unknown, served, point="median")
