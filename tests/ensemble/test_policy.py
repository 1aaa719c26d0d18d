"""Which ensemble bundle version the policy prefers: latest by version, best by the recorded
cross-validated error of the full stack (unscored last), manual never by itself."""

from __future__ import annotations

from app.ensemble.combine import subset_key
from app.ensemble.policy import cv_error, ranked, should_replace

MEMBERS = [{"name": "bow-ridge"}, {"name": "llm"}]


def bundle(version, error=None):
    manifest = {"version": version, "members": MEMBERS}
    if error is not None:
        key = subset_key(["bow-ridge", "llm"])
        manifest["cross_validated"] = {"stacks": {key: {"mean_error": error}, "llm": {"mean_error": 1.0}}}
    return manifest


def test_cv_error_reads_the_full_stack_not_a_subset():
    assert cv_error(bundle("1", 55.0)) == 55.0  # not the llm-alone stack's 1.0
    assert cv_error(bundle("1")) is None


def test_ranking_and_replacement():
    a, b, c = bundle("20260101", 60.0), bundle("20260102", 50.0), bundle("20260103")
    assert [m["version"] for m in ranked([a, b, c], "latest")] == ["20260103", "20260102", "20260101"]
    assert [m["version"] for m in ranked([a, b, c], "best")] == ["20260102", "20260101", "20260103"]
    assert should_replace("latest", c, b) and not should_replace("latest", a, b)
    assert should_replace("best", b, a) and not should_replace("best", a, b) and not should_replace("best", c, a)
    assert should_replace("best", a, c)  # a scored bundle beats an unscored one
    assert not should_replace("manual", c, a) and should_replace("latest", a, None)
