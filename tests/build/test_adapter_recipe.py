"""An llm member whose adapter the build trains (`train:` in the recipe): refused when it cannot run,
rendered as its own stage that reads data/train.jsonl only, and end to end on the tiny model, a real
LoRA trained in the build whose version the bundle names and the store holds after promotion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from app.build import pipeline
from app.build import recipe as recipes
from app.build.adapter_step import validation_split
from app.build.publish import install_adapter
from app.model.item_files import load_items, write_items
from app.training.config import PRESETS
from tests.factories import make_items

DATA = {"train": [{"path": "t.jsonl"}], "heldout": {"path": "h.jsonl"}}


def parse(llm: dict, **extra) -> recipes.Recipe:
    return recipes.parse({"data": DATA, "members": {"c": {"estimator": "constant"}, "llm": llm}, **extra}, "r.yaml")


def test_a_train_spec_names_its_adapter_and_lays_the_options_over_the_preset():
    got = parse({"estimator": "llm", "train": {"preset": "smollm2-cpu", "options": {"max_steps": 3, "lora_r": 8}}})
    spec = got.members["llm"].train
    assert spec.name == "pricer-llm" and spec.folder == "adapter-store/adapters/pricer-llm"
    config = spec.config()
    assert (config.max_steps, config.lora_r) == (3, 8)
    assert config.learning_rate == PRESETS["smollm2-cpu"].learning_rate  # the rest is the preset's
    named = parse({"estimator": "llm", "train": {"preset": "smollm2-cpu", "name": "mine"}})
    assert named.members["llm"].train.name == "mine"
    assert yaml.safe_load(yaml.safe_dump(got.model_dump(mode="json")))["members"]["llm"]["train"]["name"] == "pricer-llm"


@pytest.mark.parametrize("llm, message", [
    ({"estimator": "llm", "train": {"preset": "nope"}}, "unknown preset 'nope'; known: llama31-8b-course"),
    ({"estimator": "llm", "train": {"preset": "smollm2-cpu", "options": {"lora_rr": 8}}}, "unknown option.*lora_rr"),
    ({"estimator": "llm", "train": {"preset": "smollm2-cpu", "options": {"lora_r": 0}}}, "options.lora_r: Input should be greater"),
    ({"estimator": "llm", "train": {"preset": "smollm2-cpu", "options": {"val": "v.jsonl"}}}, "val \\(the build sets it"),
    ({"estimator": "llm", "train": {"preset": "smollm2-cpu", "name": "../up"}}, "members.llm.train.name"),
    ({"estimator": "llm"}, "exactly one of `adapter`"),
    ({"estimator": "llm", "adapter": "models/adapters/a/v1", "train": {"preset": "smollm2-cpu"}}, "exactly one of `adapter`"),
    ({"estimator": "knn", "train": {"preset": "smollm2-cpu"}}, "llm member only, not 'knn'"),
    ({"estimator": "constant", "adapter": "models/adapters/a/v1"}, "llm member only, not 'constant'"),
    ({"estimator": "llm", "train": {"preset": "smollm2-cpu-rag"}}, "llm read the index"),  # comparables in its prompts
])
def test_a_train_spec_that_cannot_run_is_refused_with_the_field_named(llm, message):
    with pytest.raises(recipes.RecipeError, match=message):
        parse(llm)


def test_two_adapters_of_one_name_are_refused():
    train = {"estimator": "llm", "train": {"preset": "smollm2-cpu", "name": "same"}}
    with pytest.raises(recipes.RecipeError, match="same name"):
        recipes.parse({"data": DATA, "members": {"a": train, "b": train}}, "r.yaml")


def test_the_adapter_has_its_own_stage_and_the_member_depends_on_its_output():
    stages = pipeline.stages(parse({"estimator": "llm", "train": {"preset": "smollm2-cpu"}}))["stages"]
    adapter = stages["adapter-llm"]
    assert adapter["cmd"].endswith("build-step adapter llm")
    assert adapter["deps"] == [pipeline.TRAIN_FILE]  # never the held-out rows
    assert adapter["params"] == ["members.llm.train"] and adapter["outs"] == ["adapter-store/adapters/pricer-llm"]
    assert "adapter-store/adapters/pricer-llm" in stages["member-llm"]["deps"]
    assert "adapter-store/adapters/pricer-llm" in stages["stack"]["deps"]
    assert pipeline.TRAIN_FILE not in stages["member-llm"]["deps"]
    rag = pipeline.stages(parse({"estimator": "llm", "train": {"preset": "smollm2-cpu-rag"}}, index={"data": ["train"]}))
    assert rag["stages"]["adapter-llm"]["deps"] == [pipeline.TRAIN_FILE, "index"]  # its comparables


def test_a_stored_adapter_member_has_no_adapter_stage():
    stages = pipeline.stages(parse({"estimator": "llm", "adapter": "/store/adapters/a/v1"}))["stages"]
    assert not [name for name in stages if name.startswith("adapter-")]
    assert "/store/adapters/a/v1" in stages["member-llm"]["deps"]


def test_the_validation_slice_is_seeded_and_held_back_from_training(tmp_path):
    write_items(tmp_path / "data" / "train.jsonl", make_items(40, seed=1))
    config = PRESETS["smollm2-cpu"].model_copy(update={"val_items": 0, "final_val_items": 6, "seed": 3})
    train, val = validation_split(tmp_path, config, tmp_path / "a")
    again, _ = validation_split(tmp_path, config, tmp_path / "b")
    everything = [i.text for i in load_items(tmp_path / "data" / "train.jsonl")]
    kept, held = [i.text for i in load_items(train)], [i.text for i in load_items(val)]
    assert len(held) == 6 and not set(kept) & set(held) and sorted(kept + held) == sorted(everything)
    assert [i.text for i in load_items(again)] == kept
    assert held != everything[:6]  # a random slice, not the first rows
    none = config.model_copy(update={"final_val_items": 0})
    assert validation_split(tmp_path, none, tmp_path / "c") == (tmp_path / "data" / "train.jsonl", None)
    with pytest.raises(ValueError, match="more than half"):
        validation_split(tmp_path, config.model_copy(update={"val_items": 21}), tmp_path / "d")


def test_publishing_installs_the_version_once_and_never_replaces_another(tmp_path):
    version = tmp_path / "ws" / "adapter-store" / "adapters" / "a" / "v1"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text('{"version": "v1"}\n')
    (version / "adapter_model.safetensors").write_bytes(b"weights")
    store = tmp_path / "store"
    assert install_adapter(version, tmp_path / "ws" / "adapter-store", store) == store / "adapters" / "a" / "v1"
    assert (store / "adapters" / "a" / "v1" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert install_adapter(version, tmp_path / "ws" / "adapter-store", store) is None  # the same: skipped
    (version / "manifest.json").write_text('{"version": "v1", "other": true}\n')
    with pytest.raises(FileExistsError, match="not replaced"):
        install_adapter(version, tmp_path / "ws" / "adapter-store", store)
    assert not [p for p in (store / "adapters" / "a").iterdir() if p.name.startswith(".")]  # no half copy left


@pytest.mark.training
@pytest.mark.timeout(1200)
def test_a_build_trains_the_adapter_its_bundle_names_and_promotion_installs_it(tmp_path, tiny_model_dir):
    from app.ensemble.bundle import Bundle
    from app.store.base import fingerprint
    from tests.build.builds import build, ran, recipe_file, summary

    write_items(tmp_path / "train.jsonl", make_items(40, seed=1))
    write_items(tmp_path / "heldout.jsonl", make_items(20, seed=2))
    options = {"base": str(tiny_model_dir), "max_steps": 2, "save_steps": 1, "batch_size": 4, "max_length": 96,
               "lora_r": 8, "lora_alpha": 16, "bf16": False, "val_items": 0, "final_val_items": 4, "eval_batch_size": 4,
               "logging_steps": 1, "learning_rate": 3e-2}
    members = {"constant": {"estimator": "constant"},
               "llm": {"estimator": "llm", "train": {"preset": "smollm2-cpu", "options": options}}}
    recipe = recipe_file(tmp_path, members)
    store, ws = tmp_path / "store", tmp_path / "ws"
    env = {"PRICER_ENGINE": "fake", "PRICER_BASE_MODEL": str(tiny_model_dir), "PRICER_DEFAULT_ADAPTER": "",
           "PRICER_WATCH_ADAPTERS": "false", "PRICER_LOG_JSON": "false"}
    first = build(recipe, ws, store, env=env)
    result = summary(first)
    assert ran(first) == {"data", "adapter-llm", "member-constant", "member-llm", "stack", "evaluate"}
    assert result["promoted"], result

    [trained] = (ws / "adapter-store" / "adapters" / "pricer-llm").iterdir()  # the final save only
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["steps"] == 2 and manifest["base_fingerprint"] == fingerprint(tiny_model_dir)
    assert manifest["training"]["train_items"] == 36 and manifest["validation"]["n"] == 4  # 4 held back and scored
    heldout = {i.text for i in load_items(tmp_path / "heldout.jsonl")}
    seen = [i.text for f in ("train.jsonl", "val.jsonl") for i in load_items(ws / "adapter-runs" / "llm" / f)]
    assert len(seen) == 40 and not heldout & set(seen)  # the training never saw a stacking row

    bundle = json.loads((Path(result["bundle"]) / "manifest.json").read_text())
    [row] = [r for r in bundle["members"] if r["name"] == "llm"]
    assert row["ref"] == f"adapters/pricer-llm/{trained.name}" and row["kind"] == "external"
    installed = store / row["ref"]
    assert (installed / "manifest.json").read_bytes() == (trained / "manifest.json").read_bytes()
    assert (installed / "adapter_model.safetensors").read_bytes() == (trained / "adapter_model.safetensors").read_bytes()
    Bundle.load(result["bundle"], store)  # the llm row's adapter is in the store, with the hash it was fitted with
    assert f"adapter installed: {installed}" in first.stdout

    again = build(recipe, ws, store, env=env)
    assert ran(again) == set() and summary(again)["digest"] == result["digest"]

    changed = build(recipe, ws, store, "--set", "members.llm.train.options.max_steps=3", "--promote", "never", env=env)
    assert ran(changed) == {"adapter-llm", "member-llm", "stack", "evaluate"}
    [retrained] = (ws / "adapter-store" / "adapters" / "pricer-llm").iterdir()
    assert json.loads((retrained / "manifest.json").read_text())["steps"] == 3
    assert summary(changed)["digest"] != result["digest"]
    assert not (store / "adapters" / "pricer-llm" / retrained.name).exists()  # not promoted: the store is untouched
