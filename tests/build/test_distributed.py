"""A build's per-item steps on Ray Data (app.build.distributed): when they go to Ray, and that what
comes back is what the local path computes, row for row, in item order. On a local Ray (two CPUs,
started once for the module); the two-node cluster case is tests/build/test_distributed_cluster.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.build import steps
from app.build.distributed import features_on_ray, use_ray
from app.build.recipe import Member, Scale, parse
from app.config import Settings
from app.estimators.base import EstimatorOptions
from app.model.item_files import write_items
from tests.factories import make_items

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize(("ray", "n", "expected"), [
    ("never", 10**6, False), ("always", 1, True), ("auto", 19_999, False), ("auto", 20_000, True),
])
def test_when_a_step_goes_to_ray(ray, n, expected):
    assert use_ray(Scale(ray=ray), n) is expected
    assert use_ray(Scale(ray="auto", min_items=5), 5)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def options(tmp_path: Path, **settings) -> EstimatorOptions:
    return EstimatorOptions(settings=Settings(models_dir=tmp_path / "store", **settings), seed=42)


@pytest.mark.parametrize("name", ["bow-ridge", "features-lr", "details-gbm"])  # texts, dicts, a matrix
def test_features_on_ray_are_the_local_inputs_in_item_order(local_ray, tmp_path, name):
    items = make_items(45, seed=3)
    local = steps.make_estimator(name, Member(estimator=name), options(tmp_path)).inputs(items)
    got = features_on_ray(name, {}, options(tmp_path), items, Scale(batch_size=7), steps.make_estimator)
    if isinstance(local, np.ndarray):
        np.testing.assert_array_equal(got, local)  # nan where the item states nothing, in the same places
        assert got.dtype == local.dtype
    else:
        assert got == local


def test_llm_head_features_on_ray(local_ray, tmp_path, tiny_model_dir):
    """The hidden states of a (tiny) LLM, the feature Ray is for. Batches of another size pad
    differently, so equal to float precision, not bit for bit (float32 here: in bfloat16 the same
    padding moves a state by a bfloat16 step, 0.016 near 2)."""
    items, params = make_items(20, seed=4), {"depth": 2, "layers": [1, 2], "dtype": "float32"}
    made = options(tmp_path, base_model=str(tiny_model_dir))
    local = steps.make_estimator("head", Member(estimator="llm-head", params=params), made).inputs(items)
    got = features_on_ray("llm-head", params, made, items, Scale(batch_size=6), steps.make_estimator)
    assert got.shape == local.shape and got.dtype == local.dtype
    np.testing.assert_allclose(got, local, rtol=1e-4, atol=1e-4)


MEMBERS = {"bow-ridge": {"estimator": "bow-ridge"}, "features-lr": {"estimator": "features-lr"}}


def workspace(tmp_path: Path, name: str, ray: str, members: dict = MEMBERS, **extra) -> Path:
    """A build workspace as the pipeline leaves it before the member stages: params.yaml and data/."""
    ws = tmp_path / name
    ws.mkdir()
    write_items(tmp_path / "train.jsonl", make_items(150, seed=1))
    write_items(tmp_path / "heldout.jsonl", make_items(40, seed=2))
    recipe = parse({"name": "tiny", "data": {"train": [{"path": str(tmp_path / "train.jsonl")}],
                                             "heldout": {"path": str(tmp_path / "heldout.jsonl")}},
                    "members": members, "scale": {"ray": ray, "batch_size": 16}, **extra}, "test")
    (ws / "params.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    steps.data_step(ws)
    return ws


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_member_step_on_ray_saves_and_answers_what_the_local_one_does(local_ray, tmp_path, capsys):
    settings = Settings(models_dir=tmp_path / "store")
    here, there = workspace(tmp_path, "here", "never"), workspace(tmp_path, "there", "always")
    for name in ("bow-ridge", "features-lr"):
        assert steps.member_step(here, name, settings) == steps.member_step(there, name, settings) == 40
        assert files(there / "members" / name) == files(here / "members" / name)  # the same model, byte for byte
        assert (there / "answers" / f"{name}.jsonl").read_bytes() == (here / "answers" / f"{name}.jsonl").read_bytes()
    shown = capsys.readouterr().out
    assert "ray: bow-ridge: inputs of 150 items in 10 batches" in shown  # its inputs came from Ray
    assert "ray: features-lr: inputs of 40 items in 3 batches" in shown  # held out: from its saved folder
    assert "ray: features-lr: inputs of 150" not in shown  # its brands are learned first: fitted here


def guesses(ws: Path, name: str) -> list[float]:
    return [json.loads(line)["guess"] for line in (ws / "answers" / f"{name}.jsonl").read_text().splitlines()]


def test_knn_answers_on_ray_over_the_builds_index(local_ray, tmp_path, capsys):
    """knn made once per actor over the build's own index (the packaged MiniLM): the local answers,
    to float precision (the queries are embedded in batches of another size)."""
    settings = Settings(models_dir=tmp_path / "store")
    members, index = {"knn": {"estimator": "knn", "params": {"k": 5}}}, {"embedder": "minilm", "data": ["train"]}
    here = workspace(tmp_path, "here", "never", members, index=index)
    there = workspace(tmp_path, "there", "always", members, index=index)
    steps.index_step(here, settings)
    shutil.copytree(here / "index", there / "index")
    assert steps.member_step(here, "knn", settings) == steps.member_step(there, "knn", settings) == 40
    assert guesses(there, "knn") == pytest.approx(guesses(here, "knn"), rel=1e-5)
    assert "ray: knn: answers of 40 items in 3 batches" in capsys.readouterr().out


def test_llm_answers_on_ray(local_ray, tmp_path, capsys, tiny_model_dir):
    """The llm member made once per actor, pinned to its adapter (the fake engine: the Ray path, not the model)."""
    from tests.batch.fixtures import make_store, settings_values
    from tests.factories import make_lora_adapter

    store = make_store(tmp_path / "store")
    settings = Settings(**settings_values(store) | {"base_model": str(tiny_model_dir)})
    members = {"llm": {"estimator": "llm", "adapter": str(make_lora_adapter(tiny_model_dir, store / "adapters", rank=4))}}
    here, there = workspace(tmp_path, "here", "never", members), workspace(tmp_path, "there", "always", members)
    assert steps.member_step(here, "llm", settings) == steps.member_step(there, "llm", settings) == 40
    assert (there / "answers" / "llm.jsonl").read_bytes() == (here / "answers" / "llm.jsonl").read_bytes()
    assert "ray: llm: answers of 40 items in 3 batches" in capsys.readouterr().out
