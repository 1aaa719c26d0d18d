"""What models/ ships stays servable under the serving spec: each adapter version's manifest records
a prompt hash this code builds and a validation scored under the served point rule; with an index the
retrieval-augmented version ranks best, and the shipped ensemble's llm member is that version, so a
service with an index answers with the LLM inside the stack (without one: the older version, left
out of the stack, which says so)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.adapters.policy import best_first
from app.adapters.store import scan
from app.adapters.validation import AdapterRejected, check_prompt
from app.ensemble.bundle import find_bundles
from app.ensemble.service import fitted_adapter_label

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_the_shipped_versions_record_a_served_prompt_and_point_rule():
    versions = [v for v in scan(MODELS / "adapters") if v.name == "pricer-smollm2"]
    assert len(versions) == 2 and all(v.problem is None for v in versions)
    formats = {v.version: check_prompt(v.manifest.prompt_hash, has_index=True) for v in versions}
    assert sorted(formats.values()) == [0, 5]
    for v in versions:
        assert v.manifest.point_rule == "median"  # SmolLM2's digit tokenizer: point_rule=auto serves the median
        assert v.served_error("median") == pytest.approx(v.manifest.validation.by_point["median"]["mean_error"], abs=0.01)
    rag = next(v for v in versions if formats[v.version] == 5)
    with pytest.raises(AdapterRejected, match="no comparables index"):
        check_prompt(rag.manifest.prompt_hash, has_index=False)
    assert best_first(versions, "median")[0] is rag


def test_the_shipped_ensembles_were_fitted_on_the_best_shipped_adapter():
    bundles = find_bundles(MODELS / "ensembles", "pricer-ensemble")  # the served one and the one before it
    assert bundles
    versions = [v for v in scan(MODELS / "adapters") if v.name == "pricer-smollm2"]
    best = best_first(versions, "median")[0]
    for bundle in bundles:
        rows = {r["name"]: r for r in json.loads((bundle / "manifest.json").read_text())["members"]}
        assert fitted_adapter_label(rows["llm"]) == f"{best.name}@{best.version}", bundle.name
