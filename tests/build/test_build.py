"""`pricer build` end to end on tiny synthetic data with real estimators, real DVC and a tiny LLM's
hidden states: what reruns after a change, the promotion rule both ways through the command, a
killed build resumed to the same bundle digest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from app.ensemble.bundle import Bundle, content_digest
from app.versions import desired
from tests.build.builds import build, ran, recipe_file, summary
from tests.factories import make_items


def test_a_build_reruns_only_what_a_change_touches(folder, tiny_model_dir):
    store, ws = folder / "store", folder / "ws"
    members = {"constant": {"estimator": "constant"}, "bow-ridge": {"estimator": "bow-ridge"},
               "head": {"estimator": "llm-head", "params": {"depth": 2, "layers": [1, 2]}}}
    recipe = recipe_file(folder, members)
    env = {"PRICER_BASE_MODEL": str(tiny_model_dir)}
    first = build(recipe, ws, store, env=env)
    result = summary(first)
    assert ran(first) == {"data", "member-constant", "member-bow-ridge", "member-head", "stack", "evaluate"}
    assert result["promoted"] and "nothing active to compare against" in result["reason"]
    bundle = Bundle.load(result["bundle"], store)  # the published bundle serves: members and hashes check
    assert set(bundle.ensemble.members) == {"constant", "bow-ridge", "head"}
    assert desired.read(store).ensemble == ("tiny", Path(result["bundle"]).name)
    manifest = json.loads((Path(result["bundle"]) / "manifest.json").read_text())
    assert manifest["build"]["digest"] == result["digest"] == content_digest(ws / "bundle" / "build")
    assert (ws / "evaluation" / "charts" / "stack-oof.png").stat().st_size > 0

    again = build(recipe, ws, store, env=env)
    assert summary(again)["digest"] == result["digest"] and ran(again) == set()
    assert "nothing changed since the last build" in again.stdout and "is this build" in again.stdout
    rerun = build(recipe, ws, store, "--rerun", "stack", "--promote", "never", env=env)  # after a change to the stack's code
    assert ran(rerun) == {"stack", "evaluate"} and summary(rerun)["digest"] == result["digest"]  # the same bundle again
    unknown = build(recipe, ws, store, "--rerun", "stak", env=env)
    assert unknown.returncode != 0 and "--rerun stak: no such stage in this recipe" in unknown.stdout + unknown.stderr

    changed = build(recipe, ws, store, "--set", "members.head.params.layers=[2]", "--promote", "never", env=env)
    assert ran(changed) == {"member-head", "stack", "evaluate"}
    assert summary(changed)["digest"] != result["digest"]
    assert desired.read(store).ensemble == ("tiny", Path(result["bundle"]).name)  # never: the store is untouched


def test_promotion_by_measurement_both_ways(folder):
    store = folder / "store"
    weak = recipe_file(folder, {"constant": {"estimator": "constant"}})
    strong = recipe_file(folder, {"constant": {"estimator": "constant"}, "bow-ridge": {"estimator": "bow-ridge"},
                                  "features-lr": {"estimator": "features-lr"}})
    first = summary(build(weak, folder / "ws-weak", store))
    assert first["promoted"]
    better = summary(build(strong, folder / "ws-strong", store))
    assert better["promoted"], better
    comparison = better["comparison"]
    assert comparison["difference_ci"][1] < 0 and comparison["n"] == 60
    assert desired.read(store).ensemble == ("tiny", Path(better["bundle"]).name)
    shown = subprocess.run([sys.executable, "-m", "app.cli", "ensemble", "show", better["bundle"], "--models-dir", str(store)],
                           capture_output=True, text=True)
    assert '"promotion"' in shown.stdout and "wholly below zero" in shown.stdout

    worse = build(weak, folder / "ws-weak", store)  # nothing to rebuild, but it no longer is the active one
    result = summary(worse)
    assert not result["promoted"] and "not better" in result["reason"] and "not promoted" in worse.stdout
    assert desired.read(store).ensemble == ("tiny", Path(better["bundle"]).name)


def test_a_killed_build_resumes_to_the_same_bundle(folder, tiny_model_dir):
    members = {"bow-ridge": {"estimator": "bow-ridge"}, "features-lr": {"estimator": "features-lr"},
               "head": {"estimator": "llm-head", "params": {"depth": 2, "layers": [1, 2]}}}
    recipe = recipe_file(folder, members)
    env = {**os.environ, "PRICER_BASE_MODEL": str(tiny_model_dir)}
    whole = summary(build(recipe, folder / "ws-whole", folder / "store-whole", "--promote", "never", env=env))

    ws = folder / "ws-killed"
    command = [sys.executable, "-m", "app.cli", "build", str(recipe), "--workspace", str(ws), "--models-dir",
               str(folder / "store-killed"), "--promote", "never"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (ws / "answers" / "bow-ridge.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the build and the stage it was running, mid-build
    process.wait()
    assert not (ws / "bundle" / "build" / "manifest.json").exists(), "killed too late to test a resume"
    resumed = build(recipe, ws, folder / "store-killed", "--promote", "never", env=env)
    assert "data" not in ran(resumed) and "stack" in ran(resumed)
    assert summary(resumed)["digest"] == whole["digest"]


def test_a_priced_catalog_builds_end_to_end(tmp_path):
    """The bring-your-own-catalog recipe's shape: a CSV with a price column, bad rows in the errors file."""
    import csv

    items = make_items(140, seed=3)
    path = tmp_path / "listings.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "description", "category", "price"])
        for i, item in enumerate(items):
            writer.writerow([i, item.title, item.text, item.category or "", f"${item.price:,.2f}"])
        writer.writerow([900, "A lamp with no price", "desk lamp", "", ""])
        writer.writerow([901, "A lamp priced in words", "desk lamp", "", "twelve"])
        writer.writerow([902, "A free lamp", "desk lamp", "", "0"])
    recipe = tmp_path / "catalog.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "mine", "data": {"catalog": {"path": str(path), "heldout_fraction": 0.25, "seed": 7}},
        "members": {"constant": {"estimator": "constant"}, "bow-ridge": {"estimator": "bow-ridge"}}}))
    ws = tmp_path / "ws"
    result = summary(build(recipe, ws, tmp_path / "store"))
    facts = json.loads((ws / "data" / "facts.json").read_text())
    assert facts["rows"] == 143 and facts["items"] == 140 and facts["errors"] == 3
    assert facts["train"] + facts["heldout"] == 140 and 20 <= facts["heldout"] <= 50
    errors = {row["id"]: row["reason"] for row in map(json.loads, (ws / "data" / "errors.jsonl").read_text().splitlines())}
    assert set(errors) == {900, 901, 902} and "missing" in errors[900] and "more than 0" in errors[902]
    assert result["promoted"] and Bundle.load(result["bundle"], tmp_path / "store").manifest["data"]["val"]["items"] == facts["heldout"]


def test_a_sweep_scores_each_size_and_draws_the_curve(folder):
    recipe = recipe_file(folder, {"constant": {"estimator": "constant"}, "bow-ridge": {"estimator": "bow-ridge"}})
    ws = folder / "ws"
    done = subprocess.run([sys.executable, "-m", "app.cli", "build", str(recipe), "--workspace", str(ws), "--models-dir",
                           str(folder / "store"), "--sweep", "data.train.0.limit=40,120", "--sweep",
                           "data.train.0.sample_seed=1,2"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [json.loads(line) for line in (ws / "sweep.jsonl").read_text().splitlines()]
    assert [(r["train_items"], r["settings"]["data.train.0.sample_seed"]) for r in rows] == [(40, 1), (40, 2), (120, 1), (120, 2)]
    assert len({r["digest"] for r in rows}) == 4 and not (folder / "store" / "ensembles").exists()  # a sweep promotes nothing
    curve = subprocess.run([sys.executable, "-m", "app.cli", "build-curve", str(ws / "sweep.jsonl"), "--out",
                            str(folder / "curve.png")], capture_output=True, text=True)
    assert curve.returncode == 0, curve.stderr
    assert "| 40 | 2 |" in curve.stdout and "200,000 (extrapolated)" in curve.stdout and "not measurements" in curve.stdout
    assert (folder / "curve.png").stat().st_size > 10_000
