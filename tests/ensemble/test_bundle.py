"""The bundle: written atomically, loads, refuses a missing or mismatched member; combine drops a
missing member and uses the stack fitted for the members present."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from app.ensemble.bundle import Bundle, BundleError, find_bundles, write_bundle
from app.ensemble.combine import NoMembersError
from app.ensemble.fit import fit_stacks


def _answers(n=80, seed=0):
    rng = np.random.default_rng(seed)
    truths = np.exp(rng.normal(4.5, 1.0, n))
    answers = {
        "a": list(truths * np.exp(rng.normal(0, 0.2, n))),
        "b": list(truths * np.exp(rng.normal(0.3, 0.6, n))),
        "llm": list(truths * np.exp(rng.normal(0, 0.9, n))),
    }
    return answers, list(truths)


@pytest.fixture
def bundle_dir(tmp_path):
    answers, truths = _answers()
    stack = fit_stacks(answers, truths, 0.8, 5, 0)
    saved = tmp_path / "work" / "a"
    saved.mkdir(parents=True)
    (saved / "estimator.json").write_text('{"name": "constant", "mean": 100.0}\n')
    store = tmp_path / "store"
    adapter = store / "adapters" / "pricer-x" / "v1"
    adapter.mkdir(parents=True)
    (adapter / "manifest.json").write_text('{"version": "v1"}\n')
    from app.ensemble.bundle import sha256_file

    manifest = {"name": "e", "version": "v1", "members": [
        {"name": "a"}, {"name": "b"},
        {"name": "llm", "kind": "external", "ref": "adapters/pricer-x/v1", "file": "manifest.json",
         "sha256": sha256_file(adapter / "manifest.json")}]}
    (tmp_path / "work" / "b").mkdir()
    (tmp_path / "work" / "b" / "estimator.json").write_text('{"name": "constant", "mean": 50.0}\n')
    dest = write_bundle(store / "ensembles" / "e" / "v1", stack, manifest,
                        {"a": saved, "b": tmp_path / "work" / "b"})
    return dest, store


def test_bundle_round_trip(bundle_dir):
    dest, store = bundle_dir
    bundle = Bundle.load(dest, store)
    assert bundle.label == "e@v1" and bundle.ensemble.members == ("a", "b", "llm")
    assert len(bundle.ensemble.subsets) == 7
    assert not any(p.name.startswith(".") for p in dest.parent.iterdir())
    assert find_bundles(store / "ensembles", "e") == [dest]
    assert bundle.member_folder("a") == dest / "members" / "a"


def test_refuses_a_missing_member(bundle_dir):
    dest, store = bundle_dir
    shutil.rmtree(dest / "members" / "b")
    with pytest.raises(BundleError, match="member 'b': its folder .* is missing"):
        Bundle.load(dest, store)


def test_refuses_a_mismatched_member(bundle_dir):
    dest, store = bundle_dir
    (dest / "members" / "a" / "estimator.json").write_text('{"name": "constant", "mean": 1.0}\n')
    with pytest.raises(BundleError, match="member 'a': .*estimator.json does not match"):
        Bundle.load(dest, store)


def test_refuses_a_missing_or_other_external_member(bundle_dir):
    dest, store = bundle_dir
    manifest = store / "adapters" / "pricer-x" / "v1" / "manifest.json"
    manifest.write_text('{"version": "v2"}\n')
    with pytest.raises(BundleError, match="member 'llm': .* not the version the ensemble was fitted with"):
        Bundle.load(dest, store)
    manifest.unlink()
    with pytest.raises(BundleError, match="member 'llm': .* is missing from the model store"):
        Bundle.load(dest, store)
    Bundle.load(dest)  # without a store, external members are not checked


def test_refuses_an_unfinished_bundle_and_a_changed_stack(bundle_dir, tmp_path):
    dest, store = bundle_dir
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.load(tmp_path)
    stack = json.loads((dest / "stack.json").read_text())
    stack["subsets"]["a"]["intercept"] += 1
    (dest / "stack.json").write_text(json.dumps(stack))
    with pytest.raises(BundleError, match="not the stack this bundle was fitted with"):
        Bundle.load(dest, store)


def test_combine_with_a_missing_member_uses_the_subset_stack(bundle_dir):
    ensemble = Bundle.load(*bundle_dir).ensemble
    full = ensemble.combine({"a": 100.0, "b": 130.0, "llm": 80.0})
    without = ensemble.combine({"a": 100.0, "b": 130.0, "llm": None})
    assert without == ensemble.combine({"a": 100.0, "b": 130.0})
    assert without == ensemble.combine({"a": 100.0, "b": 130.0, "llm": math.nan})
    assert full != without
    # By hand: the stack fitted for {a, b} only, on [log a, log b, min, max].
    fit = ensemble.subsets["a+b"]
    logs = [math.log1p(100.0), math.log1p(130.0)]
    point = fit["intercept"] + sum(c * x for c, x in zip(fit["coef"], logs + [min(logs), max(logs)], strict=True))
    assert without[0] == pytest.approx(math.expm1(point))
    assert without[1] == pytest.approx(math.expm1(point + fit["offsets"][0]))
    assert without[1] <= without[0] <= without[2]
    only = ensemble.combine_full({"llm": 80.0})
    assert only.members == ("llm",) and not only.fallback


def test_combine_refuses_nothing_and_strangers(bundle_dir):
    ensemble = Bundle.load(*bundle_dir).ensemble
    with pytest.raises(NoMembersError):
        ensemble.combine({"a": None, "b": None})
    with pytest.raises(ValueError, match="not members of this ensemble: zz"):
        ensemble.combine({"a": 1.0, "zz": 2.0})


def test_combine_falls_back_to_the_median_for_a_subset_it_lacks(bundle_dir):
    ensemble = Bundle.load(*bundle_dir).ensemble
    trimmed = type(ensemble)(ensemble.members, {k: v for k, v in ensemble.subsets.items() if k != "a+b"}, 0.8)
    got = trimmed.combine_full({"a": 100.0, "b": 121.0})
    assert got.fallback and got.price == pytest.approx(math.expm1((math.log1p(100.0) + math.log1p(121.0)) / 2))
