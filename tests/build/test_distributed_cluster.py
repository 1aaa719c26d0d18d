"""`pricer build` with its per-item steps on a real two-node Ray cluster (a head and a worker node,
separate `ray start` processes: tests/batch/cluster.py) makes the bundle a build without Ray makes,
digest for digest, with work on both nodes; nothing Ray started outlives the nodes.

The build's members are features-lr and details-gbm (fitted here, their held-out inputs on Ray from
their saved folders). bow-ridge, whose inputs are fitted on from Ray, is checked on the same cluster
input for input: its saved model is not the same bytes in two processes even without Ray (scikit-learn's
TfidfVectorizer keeps `_stop_words_id`, id(None), which the canonical skops writer keeps), so no two
builds with it share a digest.

Slow: two Ray nodes and two DVC builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from app.ensemble.bundle import content_digest
from app.model.item_files import write_items
from tests.batch.cluster import leftovers, two_nodes
from tests.factories import make_items

pytest.importorskip("dvc")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
MEMBERS = {"features-lr": {"estimator": "features-lr"}, "details-gbm": {"estimator": "details-gbm"}}


def build(folder: Path, ws: Path, scale: dict, env: dict) -> subprocess.CompletedProcess:
    data = {"train": [{"path": str(folder / "train.jsonl")}], "heldout": {"path": str(folder / "heldout.jsonl")}}
    recipe = folder / f"{ws.name}.yaml"
    recipe.write_text(yaml.safe_dump({"name": "tiny", "data": data, "members": MEMBERS, "scale": scale}))
    command = [sys.executable, "-m", "app.cli", "build", str(recipe), "--workspace", str(ws), "--models-dir",
               str(folder / "store"), "--promote", "never", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    json.loads(done.stdout.strip().splitlines()[-1])  # the summary line came
    return done


def test_a_build_on_two_ray_nodes_makes_the_bundle_a_local_build_makes(tmp_path):
    started = time.time()
    write_items(tmp_path / "train.jsonl", make_items(150, seed=1))
    write_items(tmp_path / "heldout.jsonl", make_items(40, seed=2))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")

    local = build(tmp_path, tmp_path / "ws-local", {"ray": "never"}, env)
    assert "ray:" not in local.stdout
    with two_nodes(tmp_path, env) as (address, _, _):
        there = build(tmp_path, tmp_path / "ws-cluster", {"ray": "always", "address": address, "batch_size": 8}, env)
        texts = bow_inputs_on(address, env, tmp_path)
    assert content_digest(tmp_path / "ws-cluster" / "bundle" / "build") == \
        content_digest(tmp_path / "ws-local" / "bundle" / "build")
    for name in MEMBERS:  # held out: each member's inputs from its saved folder, on the cluster
        assert f"ray: {name}: inputs of 40 items in 5 batches on 2 node(s) (2 worker(s))" in there.stdout, \
            there.stdout[-3000:]
    bow = "ray: bow-ridge: inputs of 150 items in 10 batches on 2 node(s) (2 worker(s))"
    assert bow in texts.stdout, texts.stdout[-1500:] + texts.stderr[-1500:]
    assert texts.stdout.strip().splitlines()[-1] == "same"
    assert leftovers(started) == []  # no Ray worker outlives its node


BOW = """
import sys
from pathlib import Path
from app.build.distributed import features_on_ray
from app.build.recipe import Member, Scale
from app.build.steps import make_estimator
from app.config import Settings
from app.estimators.base import EstimatorOptions
from app.model.item_files import load_items

items = load_items(Path(sys.argv[2]) / "train.jsonl")
options = EstimatorOptions(settings=Settings(models_dir=Path(sys.argv[2]) / "store"))
local = make_estimator("bow-ridge", Member(estimator="bow-ridge"), options).inputs(items)
got = features_on_ray("bow-ridge", {}, options, items, Scale(address=sys.argv[1], batch_size=15), make_estimator)
print("same" if got == local else "different")
"""


def bow_inputs_on(address: str, env: dict, folder: Path) -> subprocess.CompletedProcess:
    """bow-ridge's training inputs from the cluster, against the local ones (a driver of its own)."""
    return subprocess.run([sys.executable, "-c", BOW, address, str(folder)], capture_output=True, text=True, env=env,
                          timeout=300, start_new_session=True)
