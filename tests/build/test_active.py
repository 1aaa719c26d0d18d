"""The active bundle's answers and out-of-fold rows for the comparison (app/build/active.py), on tiny
real bundles: a member identical in both reused by fingerprint, a changed one recomputed, what cannot be
recomputed said plainly, recorded rows used as they are, a bundle fitted with title rows re-stacked
with them."""

from __future__ import annotations

import json
import sys

import pytest

from app.build.active import ActiveAnswersError
from app.build.oof import OOF_FILE, oof_rows, write_oof
from app.build.promote import active_answers, active_oof, bundle_fingerprints
from app.ensemble.bundle import sha256_file
from app.ensemble.rows import StackRows
from app.evaluation.report import item_key
from app.model.richness import richness
from tests.build.promote_bundles import FOLDS, LEVEL, SEED, SENTINEL, llm_ref, make_bundle, settings


def test_a_member_identical_in_both_is_reused_not_recomputed(tmp_path, fitted, val):
    """Sentinel answers under the new build's names come back for the active members with the same
    fingerprint (a saved member under another name, the LLM by ref + sha256); the LLM is never run."""
    store = tmp_path / "store"
    llm = llm_ref(store)
    n = len(val)
    active, _ = make_bundle(store, "20260101-000000", {"bow-ridge": "bow-ridge", "features-lr": "features-lr"},
                            fitted, val, external={"llm": (llm, fitted[1]["constant"])})
    new, _ = make_bundle(store, "20260102-000000", {"ridge": "bow-ridge", "constant": "constant"}, fitted, val,
                         external={"llm": (llm, fitted[1]["constant"])})
    prints = bundle_fingerprints(new)
    assert prints["ridge"] == bundle_fingerprints(active)["bow-ridge"] != prints["constant"]
    reuse = {"ridge": [SENTINEL] * n, "constant": [SENTINEL + 1] * n, "llm": [SENTINEL + 2] * n}
    got = active_answers(active, val, settings(store), reuse, prints)
    assert list(got) == ["bow-ridge", "features-lr", "llm"]
    assert got["bow-ridge"] == [SENTINEL] * n and got["llm"] == [SENTINEL + 2] * n
    assert got["features-lr"] == pytest.approx(fitted[1]["features-lr"])  # not in the new build: computed


def test_a_changed_member_is_recomputed(tmp_path, fitted, val):
    store = tmp_path / "store"
    active, _ = make_bundle(store, "20260101-000000", {"bow-ridge": "bow-ridge"}, fitted, val)
    new, _ = make_bundle(store, "20260102-000000", {"bow-ridge": "features-lr"}, fitted, val)  # same name, other files
    got = active_answers(active, val, settings(store), {"bow-ridge": [SENTINEL] * len(val)}, bundle_fingerprints(new))
    assert got["bow-ridge"] == pytest.approx(fitted[1]["bow-ridge"])


def test_an_llm_member_not_reused_needs_the_llm_and_says_so(tmp_path, fitted, val, monkeypatch):
    store = tmp_path / "store"
    active, _ = make_bundle(store, "20260101-000000", {"constant": "constant"}, fitted, val,
                            external={"llm": (llm_ref(store), fitted[1]["bow-ridge"])})
    new, _ = make_bundle(tmp_path / "other", "20260102-000000", {"constant": "constant"}, fitted, val,
                         external={"llm": (llm_ref(tmp_path / "other", '{"version": "v2"}\n'), fitted[1]["bow-ridge"])})
    assert bundle_fingerprints(new)["llm"] != bundle_fingerprints(active)["llm"]
    monkeypatch.setitem(sys.modules, "app.pricing.llm_estimator", None)  # as where the serving extras are absent
    reuse = {"llm": [SENTINEL] * len(val), "constant": [SENTINEL] * len(val)}
    with pytest.raises(ActiveAnswersError, match=r"needs the LLM \(pricer-x@v1\).*install the serving extras"):
        active_answers(active, val, settings(store), reuse, bundle_fingerprints(new))


def test_an_external_member_that_is_no_adapter_cannot_be_recomputed(tmp_path, fitted, val):
    store = tmp_path / "store"
    ref = store / "refs" / "oracle"
    ref.mkdir(parents=True)
    (ref / "manifest.json").write_text("{}\n")
    row = {"kind": "external", "ref": "refs/oracle", "file": "manifest.json", "sha256": sha256_file(ref / "manifest.json")}
    active, _ = make_bundle(store, "20260101-000000", {"constant": "constant"}, fitted, val,
                            external={"oracle": (row, fitted[1]["bow-ridge"])})
    with pytest.raises(ActiveAnswersError, match="'oracle' is external .* not an adapter version"):
        active_answers(active, val, settings(store), {}, {})


def test_recorded_rows_on_the_same_items_are_used_as_they_are(tmp_path, fitted, val):
    store = tmp_path / "store"
    active, answers = make_bundle(store, "20260101-000000", {"constant": "constant"}, fitted, val)
    recorded = [{"item": item_key(i), "guess": SENTINEL, "low": 0.0, "high": 2 * SENTINEL} for i in val]
    write_oof(active / OOF_FILE, recorded)
    assert active_oof(active, val, settings(store), {}, {}, LEVEL, FOLDS, SEED) == recorded
    # other folds or seed, or other items: computed again
    assert active_oof(active, val, settings(store), {}, {}, LEVEL, FOLDS, SEED + 1) == oof_rows(answers, val, LEVEL, FOLDS, SEED + 1)
    assert active_oof(active, val[:-1], settings(store), {}, {}, LEVEL, FOLDS, SEED)[0]["guess"] != SENTINEL


def test_an_active_bundle_fitted_with_title_rows_is_stacked_with_them_again(tmp_path, fitted, val):
    """At another seed the active bundle is re-stacked as its manifest says it was fitted: with its
    members' answers on the items' titles too and its richness columns, not as a plain stack."""
    store = tmp_path / "store"
    active, answers = make_bundle(store, "20260101-000000", {"bow-ridge": "bow-ridge", "constant": "constant"}, fitted, val)
    manifest = json.loads((active / "manifest.json").read_text())
    manifest["richness"] = {"features": "titles-apart", "mondrian": True, "rows": 2 * len(val), "copies": len(val)}
    (active / "manifest.json").write_text(json.dumps(manifest))
    titles = [i.title_only() for i in val]
    on_titles = active_answers(active, titles, settings(store), {}, {})
    rows = StackRows.of([richness(i) for i in val + titles], [i % len(val) for i in range(2 * len(val))],
                        [False] * len(val) + [True] * len(val), "titles-apart", True)
    expected = oof_rows({n: answers[n] + on_titles[n] for n in answers}, val, LEVEL, FOLDS, SEED + 1, rows,
                        [i.price for i in val + titles])
    got = active_oof(active, val, settings(store), {}, {}, LEVEL, FOLDS, SEED + 1)
    assert got == expected and got != oof_rows(answers, val, LEVEL, FOLDS, SEED + 1)
    # the new build's answers on the titles are reused for a member with the same fingerprint
    prints = bundle_fingerprints(active)
    reused = active_oof(active, val, settings(store), answers, prints, LEVEL, FOLDS, SEED + 1,
                        {n: [SENTINEL] * len(val) for n in answers})
    assert reused != got

