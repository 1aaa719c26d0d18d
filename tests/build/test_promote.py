"""Promotion by measurement on tiny real bundles (skops members fitted on synthetic items, stacks
from app.ensemble.fit, written by write_bundle): the out-of-fold rows, the comparison on the same
items, the rule both ways, the record in the manifest and the desired state every replica follows (the
active bundle's answers: test_active.py)."""

from __future__ import annotations

import json

import pytest

from app.build.oof import OOF_FILE, OofError, oof_rows, read_oof, write_oof
from app.build.promote import (
    Comparison, ComparisonError, Decision, active_folder, active_oof, bundle_fingerprints, compare, decide, promote, record,
)
from app.ensemble.bundle import Bundle, sha256_file
from app.ensemble.fit import cross_validated
from app.evaluation.report import item_key
from app.versions import desired
from tests.build.promote_bundles import FOLDS, LEVEL, NAME, SEED, make_bundle, settings
from tests.factories import make_items


# ------------------------------------------------------------------ out-of-fold rows


def test_oof_rows_are_the_nested_stack_and_carry_no_title_or_truth(tmp_path, fitted, val):
    _, answers = fitted
    members = {"bow-ridge": answers["bow-ridge"], "constant": answers["constant"]}
    rows = oof_rows(members, val, LEVEL, FOLDS, SEED)
    assert [r["item"] for r in rows] == [item_key(i) for i in val]
    assert all(set(r) == {"item", "guess", "low", "high"} and r["low"] <= r["guess"] <= r["high"] for r in rows)
    # the same point as the manifest's cross-validated figure for the full set (nested, never in-sample)
    _, point = cross_validated(members, [i.price for i in val], list(members), LEVEL, FOLDS, SEED)
    assert [r["guess"] for r in rows] == pytest.approx(point)
    path = tmp_path / OOF_FILE
    assert write_oof(path, rows) == len(val)
    text = path.read_text()
    assert not any(item.title in text for item in val)
    assert '"truth"' not in text and '"title"' not in text
    assert read_oof(path) == rows


def test_write_oof_refuses_a_title_or_a_truth(tmp_path, fitted, val):
    rows = oof_rows({"constant": fitted[1]["constant"]}, val, LEVEL, FOLDS, SEED)
    for extra in ({"title": val[0].title}, {"truth": val[0].price}):
        with pytest.raises(OofError, match="exactly item, guess, low, high"):
            write_oof(tmp_path / OOF_FILE, [rows[0] | extra, *rows[1:]])
    assert not (tmp_path / OOF_FILE).exists()


def test_oof_rows_refuse_answers_on_other_items(fitted, val):
    with pytest.raises(OofError, match="other items"):
        oof_rows({"constant": fitted[1]["constant"][:-1]}, val, LEVEL, FOLDS, SEED)


# ------------------------------------------------------------------ the comparison and the rule


def _rows(fitted, val, *members):
    return oof_rows({m: fitted[1][m] for m in members}, val, LEVEL, FOLDS, SEED)


def test_a_clearly_better_bundle_is_promoted_recorded_and_made_every_replicas(tmp_path, fitted, val):
    store = tmp_path / "store"
    active, _ = make_bundle(store, "20260101-000000", {"constant": "constant"}, fitted, val)
    new, new_answers = make_bundle(store, "20260102-000000", {"bow-ridge": "bow-ridge", "constant": "constant"},
                                   fitted, val)
    assert active_folder(store, NAME, exclude=new.name) == active
    new_rows = oof_rows(new_answers, val, LEVEL, FOLDS, SEED)
    active_rows = active_oof(active, val, settings(store), new_answers, bundle_fingerprints(new), LEVEL, FOLDS, SEED)
    comparison = compare(new_rows, active_rows, val, LEVEL)
    assert comparison.n == len(val) and comparison.difference_ci[1] < 0
    assert comparison.new_mean_error < comparison.active_mean_error
    assert comparison.new_hit_rate > comparison.active_hit_rate and comparison.new_coverage >= LEVEL - 0.05
    decision = decide(comparison, "if-better", LEVEL)
    assert decision.promote, decision.reason
    assert decision.reason.startswith(f"new ${comparison.new_mean_error:.2f} vs active ${comparison.active_mean_error:.2f}: -$")
    assert "wholly below zero" in decision.reason and decision.reason.endswith(": better")

    stack_before = sha256_file(new / "stack.json")
    record(new, comparison, decision, "if-better", Bundle.load(active).label)
    loaded = Bundle.load(new)  # the manifest is not hash-checked: the bundle still loads, strictly
    promotion = loaded.manifest["promotion"]
    assert promotion["promote"] is True and promotion["rule"] == "if-better"
    assert promotion["against"] == f"{NAME}@20260101-000000" and promotion["reason"] == decision.reason
    assert promotion["comparison"]["difference_ci"] == list(comparison.difference_ci)
    assert sha256_file(new / "stack.json") == stack_before

    assert desired.read(store).ensemble is None
    state = promote(store, NAME, new.name)
    assert desired.read(store).ensemble == (NAME, new.name) and state.updated_by == "pricer build"
    assert active_folder(store, NAME) == new  # the desired state now names it


def test_a_worse_bundle_is_not_promoted_and_the_reason_says_why(fitted, val):
    comparison = compare(_rows(fitted, val, "constant"), _rows(fitted, val, "bow-ridge", "constant"), val, LEVEL)
    decision = decide(comparison, "if-better", LEVEL)
    assert not decision.promote
    assert comparison.difference > 0 and decision.reason.endswith("wholly above zero: not better")


def test_an_equal_bundle_is_not_promoted(tmp_path, fitted, val):
    store = tmp_path / "store"
    active, _ = make_bundle(store, "20260101-000000", {"bow-ridge": "bow-ridge", "constant": "constant"}, fitted, val)
    new, answers = make_bundle(store, "20260102-000000", {"bow-ridge": "bow-ridge", "constant": "constant"}, fitted, val)
    active_rows = active_oof(active, val, settings(store), answers, bundle_fingerprints(new), LEVEL, FOLDS, SEED)
    comparison = compare(oof_rows(answers, val, LEVEL, FOLDS, SEED), active_rows, val, LEVEL)
    decision = decide(comparison, "if-better", LEVEL)
    assert not decision.promote
    assert comparison.difference == 0 and "+$0.00 [+$0.00, +$0.00] includes zero: not better" in decision.reason
    record(new, comparison, decision, "if-better", f"{NAME}@{active.name}")
    assert Bundle.load(new).manifest["promotion"]["promote"] is False
    assert desired.read(store).ensemble is None  # nothing written for the fleet


def _comparison(ci, coverage=0.8, difference=None) -> Comparison:
    difference = sum(ci) / 2 if difference is None else difference
    return Comparison(n=100, new_mean_error=97.1, active_mean_error=97.1 - difference, difference=difference,
                      difference_ci=ci, new_coverage=coverage, active_coverage=0.8, new_hit_rate=0.5,
                      active_hit_rate=0.5, level=LEVEL)


def test_if_better_states_the_numbers_and_needs_the_interval_wholly_below_zero():
    decision = decide(_comparison((-5.0, 0.8), difference=-2.1), "if-better", LEVEL)
    assert decision == Decision(False, "new $97.10 vs active $99.20: -$2.10 [-$5.00, +$0.80] includes zero: not better")
    assert decide(_comparison((-5.0, -0.8)), "if-better", LEVEL).promote


def test_if_better_needs_the_coverage_within_five_points_of_the_level():
    low = decide(_comparison((-5.0, -0.8), coverage=0.70), "if-better", LEVEL)
    assert not low.promote and "coverage 70.0% < 75%" in low.reason and low.reason.endswith("not promoted")
    assert decide(_comparison((-5.0, -0.8), coverage=0.75), "if-better", LEVEL).promote  # the floor itself passes
    assert not decide(_comparison((-5.0, -0.8), coverage=0.80), "if-better", 0.9).promote


def test_always_never_and_nothing_active():
    worse, better = _comparison((0.5, 3.0)), _comparison((-5.0, -0.8))
    always = decide(worse, "always", LEVEL)
    assert always.promote and "+$0.50, +$3.00" in always.reason and "rule always" in always.reason
    never = decide(better, "never", LEVEL)
    assert not never.promote and "-$5.00, -$0.80" in never.reason and "rule never" in never.reason
    assert decide(None, "if-better", LEVEL) == Decision(True, "nothing active to compare against")
    assert not decide(None, "never", LEVEL).promote and decide(None, "always", LEVEL).promote
    with pytest.raises(ValueError, match="unknown promotion rule"):
        decide(better, "sometimes", LEVEL)


def test_rows_missing_an_item_or_on_other_items_are_a_clear_error(fitted, val):
    rows = _rows(fitted, val, "constant")
    with pytest.raises(ComparisonError, match=r"active out-of-fold answers are not on the 80 held-out items: 1 missing"):
        compare(rows, rows[1:], val, LEVEL)
    other = oof_rows({"constant": fitted[1]["constant"][:10]}, make_items(10, seed=9), LEVEL, FOLDS, SEED)
    with pytest.raises(ComparisonError, match="new out-of-fold answers .* 0 missing, 10 on other items"):
        compare(rows + other, rows, val, LEVEL)


def test_the_active_folder_is_the_desired_one_else_the_newest_other(tmp_path, fitted, val):
    store = tmp_path / "store"
    assert active_folder(store, NAME) is None
    first, _ = make_bundle(store, "20260101-000000", {"constant": "constant"}, fitted, val)
    second, _ = make_bundle(store, "20260102-000000", {"constant": "constant"}, fitted, val)
    assert active_folder(store, NAME, exclude=second.name) == first and active_folder(store, NAME) == second
    desired.update(store, ensemble=(NAME, first.name))
    assert active_folder(store, NAME, exclude=second.name) == first
    with pytest.raises(FileNotFoundError, match="no ensemble version"):
        promote(store, NAME, "20990101-000000")
    assert json.loads((store / desired.STATE_FILE).read_text())["ensemble"]["version"] == first.name
