"""Stacking rows with richness classes (app.ensemble.rows): grouped folds keep an item and its title
copy together, Mondrian offsets per class with the pooled fallback, the richness columns, and old
single-pair bundles still serve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.ensemble.bundle import Bundle, BundleError, write_bundle
from app.ensemble.combine import Ensemble, subset_key
from app.ensemble.crossfit import crossvalidate, fit_subset
from app.ensemble.fit import fit_stacks, report_table
from app.ensemble.rows import MIN_CLASS_ROWS, StackRows
from app.ensemble.stack import design, fit_stack, fold_ids, ridge
from app.evaluation.bootstrap import coverage

N = 200  # items; each also as its title-only copy


def _titled(n=N, seed=0):
    """Members' log answers on n full items (close to the truth) then on their title copies (pulled
    to the middle, noisier), the truths twice, and the rows: item i and copy n + i in group i."""
    rng = np.random.default_rng(seed)
    y = rng.normal(4.5, 1.0, n)
    full = np.column_stack([y + rng.normal(0, 0.25 + 0.1 * m, n) for m in range(3)])
    title = np.column_stack([4.5 + 0.5 * (y - 4.5) + rng.normal(0, 0.7 + 0.1 * m, n) for m in range(3)])
    rows = StackRows.of(["full"] * n + ["title"] * n, list(range(n)) * 2, [False] * n + [True] * n, mondrian=True)
    return np.vstack([full, title]), np.concatenate([y, y]), rows


def test_grouped_folds_keep_an_item_and_its_copy_together():
    ids = fold_ids(2 * N, 5, 7, groups=np.array(list(range(N)) * 2))
    assert (ids[:N] == ids[N:]).all() and set(ids.tolist()) == set(range(5))
    # one row per group is exactly the ungrouped split: bundles built before keep their folds
    assert (fold_ids(N, 5, 7, groups=np.arange(N)) == fold_ids(N, 5, 7)).all()


def test_a_rows_answer_never_sees_its_title_copys_label():
    logs, y, rows = _titled()
    before = crossvalidate(logs, y, 0.8, 5, 0, rows)
    poisoned = y.copy()
    poisoned[N + 17] = 1000.0  # the copy of item 17: same group, so the same outer and inner folds
    after = crossvalidate(logs, poisoned, 0.8, 5, 0, rows)
    assert (after.point[17], after.low[17], after.high[17]) == (before.point[17], before.low[17], before.high[17])
    assert not np.allclose(after.point[:N], before.point[:N])  # strong enough to move the rows that saw it
    ungrouped = StackRows.of(rows.classes, None, rows.copies, mondrian=True)  # the leak grouping prevents
    assert crossvalidate(logs, poisoned, 0.8, 5, 0, ungrouped).point[17] != crossvalidate(logs, y, 0.8, 5, 0, ungrouped).point[17]


def test_mondrian_offsets_per_class_with_the_pooled_fallback():
    logs, y, rows = _titled()
    short = StackRows.of(["full"] * N + ["title"] * (N - MIN_CLASS_ROWS + 1) + ["short"] * (MIN_CLASS_ROWS - 1),
                         rows.groups, rows.copies, mondrian=True)
    fitted = fit_subset(logs, y, 0.8, 5, 0, short)
    by = fitted.by_class
    assert by["title"]["rows"] == N - MIN_CLASS_ROWS + 1 and not by["title"]["pooled"]
    assert by["short"] == {"offsets": list(fitted.offsets), "rows": MIN_CLASS_ROWS - 1, "pooled": True}
    width = {c: by[c]["offsets"][1] - by[c]["offsets"][0] for c in ("full", "title")}
    assert width["title"] > 1.5 * width["full"]
    assert fitted.offsets_for("title") == tuple(by["title"]["offsets"]) and fitted.offsets_for(None) == fitted.offsets
    assert fit_subset(logs, y, 0.8, 5, 0, StackRows.of(rows.classes, rows.groups, rows.copies)).by_class is None


def test_nested_coverage_holds_on_full_and_titles_only_with_mondrian():
    logs, y, rows = _titled(300, seed=1)
    truths = list(np.expm1(y))

    def covered(r):
        point, low, high = crossvalidate(logs, y, 0.8, 5, 0, r).dollars()
        return [coverage(truths[part], low[part], high[part]) for part in (slice(0, 300), slice(300, 600))]

    full, title = covered(rows)
    assert 0.72 <= full <= 0.88 and 0.72 <= title <= 0.88
    pooled_full, pooled_title = covered(StackRows.of(rows.classes, rows.groups, rows.copies))
    assert pooled_full > 0.88 and pooled_title < 0.72  # one pair for both: too wide for one, too narrow for the other


def test_the_report_scores_full_and_titles_apart():
    logs, y, rows = _titled(60)
    answers = {m: list(np.expm1(logs[:, i])) for i, m in enumerate("abc")}
    table = report_table(answers, list(np.expm1(y)), 0.8, 5, 0, rows)
    assert table["members"]["a"]["n"] == 60 and table["titles"]["n"] == 60
    assert table["titles"]["stacks"][subset_key("abc")]["mean_error"] > table["stacks"][subset_key("abc")]["mean_error"]
    assert set(table["by_richness"]) == {"full", "title"}


@pytest.mark.parametrize("features, extra", [("indicators", 2), ("interactions", 2 + 2 * 5), ("titles-apart", 2 + 2 * 5)])
def test_richness_columns_and_the_served_row_agree(features, extra):
    logs, y, rows = _titled(80)
    rows = StackRows.of(rows.classes, rows.groups, rows.copies, features=features, mondrian=True)
    assert design(logs, rows).shape == (160, 5 + extra)
    stack = fit_stack(logs, y, 5, 0, rows=rows)
    with pytest.raises(ValueError, match="richness columns"):
        stack.predict(logs)
    answers = {m: list(np.expm1(logs[:, i])) for i, m in enumerate("abc")}
    fitted = fit_stacks(answers, list(np.expm1(y)), 0.8, 5, 0, rows=rows)
    entry = fitted["subsets"][subset_key("abc")]
    assert entry["richness"] == features and len(entry["coef"]) == 5 + extra
    ensemble = Ensemble(("a", "b", "c"), fitted["subsets"], 0.8)
    for row in (3, 80 + 3):
        klass = str(rows.classes[row])
        one = rows.take(np.arange(160) == row)
        expected = entry["intercept"] + float(design(logs[[row]], one) @ np.asarray(entry["coef"]))
        combined = ensemble.combine_full({m: answers[m][row] for m in "abc"}, klass)
        assert combined.price == pytest.approx(math.expm1(expected), rel=1e-9)
        assert combined.offsets == tuple(entry["offsets_by_richness"][klass]["offsets"])


def test_titles_apart_leaves_title_rows_no_say_in_the_full_text_weights():
    """Changing the members' answers on title rows changes the title weights, never the full texts'
    answers; under interactions it moves both (the shared columns read every row)."""
    logs, y, rows = _titled(80)
    moved = logs.copy()
    moved[80:] += np.random.default_rng(3).normal(0, 0.5, size=moved[80:].shape)
    for features, full_moves in (("titles-apart", False), ("interactions", True)):
        r = StackRows.of(rows.classes, rows.groups, rows.copies, features=features)
        before, after = (np.asarray(ridge(x, y, 1.0, r).coef) for x in (logs, moved))
        shared = slice(0, 5)  # the members' three columns, their min and max
        fits = [ridge(x, y, 1.0, r) for x in (logs, moved)]
        full = r.take(np.arange(160) < 80)
        answers = [f.predict(logs[:80], full) for f in fits]
        assert np.allclose(before[shared], after[shared], atol=1e-6) != full_moves
        assert np.allclose(answers[0], answers[1], atol=1e-6) != full_moves
        assert not np.allclose(before[7:12], after[7:12])  # the title interactions move
    r = StackRows.of(rows.classes, rows.groups, rows.copies, features="titles-apart")
    apart, alone = fit_stack(moved, y, 5, 0, rows=r), fit_stack(logs[:80], y[:80], 5, 0)
    assert apart.title_alpha is not None and "title_alpha" in apart.to_dict()
    # alpha chosen too: the full texts get what a stack fitted on full texts alone gives them
    assert np.allclose(apart.predict(logs[:80], r.take(np.arange(160) < 80)), alone.predict(logs[:80]), atol=1e-6)
    x = design(logs, r)
    assert np.all(x[80:, :5] == 0) and np.all(x[:80, :5] == design(logs[:80])) and np.all(x[:80, 7:] == 0)


def test_an_old_single_pair_bundle_loads_and_serves_every_class(tmp_path):
    logs, y, _ = _titled(60)
    answers = {m: list(np.expm1(logs[:60, i])) for i, m in enumerate("ab")}
    stack = fit_stacks(answers, list(np.expm1(y[:60])), 0.8, 5, 0)  # no rows: one pair, as every bundle before
    assert "offsets_by_richness" not in stack["subsets"]["a+b"] and "richness" not in stack["subsets"]["a+b"]
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "estimator.json").write_text("{}\n")
    dest = write_bundle(tmp_path / "e" / "v1", stack, {"name": "e", "version": "v1", "members": [{"name": "a"}, {"name": "b"}]},
                        {"a": folder, "b": folder})
    ensemble = Bundle.load(dest).ensemble
    prices = {"a": 100.0, "b": 120.0}
    plain = ensemble.combine_full(prices)
    for klass in ("title", "short", "full", None):
        got = ensemble.combine_full(prices, klass)
        assert (got.price, got.low, got.high) == (plain.price, plain.low, plain.high)
        assert got.offsets == tuple(stack["subsets"]["a+b"]["offsets"])
    assert ensemble.intervals()["by_richness"] is None


def test_a_bundle_whose_richness_columns_this_version_cannot_build_is_refused_at_load(tmp_path):
    logs, y, _ = _titled(60)
    answers = {m: list(np.expm1(logs[:60, i])) for i, m in enumerate("ab")}
    stack = fit_stacks(answers, list(np.expm1(y[:60])), 0.8, 5, 0)
    stack["subsets"]["a+b"]["richness"] = "per-brand"  # a later version's columns
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "estimator.json").write_text("{}\n")
    dest = write_bundle(tmp_path / "e" / "v1", stack, {"name": "e", "version": "v1", "members": [{"name": "a"}, {"name": "b"}]},
                        {"a": folder, "b": folder})
    with pytest.raises(BundleError, match=r"richness columns \['per-brand'\] this version cannot build"):
        Bundle.load(dest)
