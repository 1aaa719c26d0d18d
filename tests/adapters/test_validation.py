"""Each fault a version can have is rejected with a reason, before it gets near the engine."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from app.adapters.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST
from app.adapters.store import read_version, scan
from app.adapters.validation import AdapterRejected, check_static, read_base_facts
from tests.factories import make_lora_adapter

V = "20260101-000000-s1"


@pytest.fixture(scope="module")
def good_adapter(tmp_path_factory, tiny_model_dir):
    """One real adapter, copied into each test's store (peft takes a second or two to build one)."""
    root = tmp_path_factory.mktemp("good")
    return make_lora_adapter(tiny_model_dir, root, "pa", V, rank=4)


@pytest.fixture(scope="module")
def base_facts(tiny_model_dir):
    return read_base_facts(tiny_model_dir)


@pytest.fixture
def adapters(tmp_path, good_adapter):
    store = tmp_path / "adapters"
    shutil.copytree(good_adapter, store / "pa" / V)
    return store


def check(adapters, base_facts, name="pa", version=V, max_rank=16):
    return check_static(read_version(adapters, name, version), adapters, base_facts, max_rank)


def test_good_version_passes(adapters, base_facts):
    facts = check(adapters, base_facts)
    assert facts["rank"] == 4 and facts["tensors"] > 0 and facts["comparables"] == 0
    assert "q_proj" in base_facts.module_names and "down_proj" in base_facts.module_names


def test_no_manifest_is_not_a_version(adapters):
    (adapters / "pa" / V / MANIFEST).unlink()
    assert scan(adapters) == []
    hidden = adapters / "pa" / ".20260102-000000-s2.tmp-1"
    hidden.mkdir()
    assert scan(adapters) == []


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("missing_weights", "is missing"),
        ("truncated_weights", "not complete safetensors"),
        ("garbage_weights", "not complete safetensors"),
        ("nan_weights", "NaN"),
        ("not_lora", "not a LoRA"),
        ("no_config", "adapter_config.json is missing"),
        ("bad_target", "not in the base"),
        ("wrong_base", "another base"),
        ("bad_manifest", "unreadable manifest"),
        ("manifest_mismatch", "manifest says"),
        ("other_prompt", "trained under another prompt"),
        ("no_prompt_hash", "records no prompt hash"),
    ],
)
def test_faults_are_rejected_with_reason(adapters, base_facts, fault, reason):
    folder = adapters / "pa" / V
    weights, config, manifest = folder / ADAPTER_WEIGHTS, folder / ADAPTER_CONFIG, folder / MANIFEST
    if fault == "missing_weights":
        weights.unlink()
    elif fault == "truncated_weights":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif fault == "garbage_weights":
        weights.write_bytes(b"\x00" * 64)
    elif fault == "nan_weights":
        import torch
        from safetensors.torch import load_file, save_file

        tensors = load_file(weights)
        first = sorted(tensors)[0]
        tensors[first] = torch.full_like(tensors[first], float("nan"))
        save_file(tensors, weights)
    elif fault in ("not_lora", "bad_target"):
        data = json.loads(config.read_text())
        if fault == "not_lora":
            data["peft_type"] = "PREFIX_TUNING"
        else:
            data["target_modules"] = ["q_proj", "frobnicator_proj"]
        config.write_text(json.dumps(data))
    elif fault == "no_config":
        config.unlink()
    elif fault in ("wrong_base", "manifest_mismatch", "other_prompt", "no_prompt_hash"):
        data = json.loads(manifest.read_text())
        if fault == "wrong_base":
            data["base_fingerprint"] = "sha256:" + "0" * 64
        elif fault == "other_prompt":
            data["prompt_hash"] = "sha256:" + "e" * 64
        elif fault == "no_prompt_hash":
            del data["prompt_hash"]
        else:
            data["version"] = "20990101-000000-s9"
        manifest.write_text(json.dumps(data))
    elif fault == "bad_manifest":
        manifest.write_text("{not json")
    with pytest.raises(AdapterRejected, match=reason):
        check(adapters, base_facts)


def test_rank_over_limit(adapters, base_facts):
    with pytest.raises(AdapterRejected, match="max_lora_rank=2"):
        check(adapters, base_facts, max_rank=2)


def test_symlinked_version_out_of_store(tmp_path, adapters, base_facts):
    outside = tmp_path / "outside"
    shutil.copytree(adapters / "pa" / V, outside)
    (adapters / "pa" / "20260105-000000-s5").symlink_to(outside, target_is_directory=True)
    data = json.loads((outside / MANIFEST).read_text())
    data["version"] = "20260105-000000-s5"
    (outside / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(AdapterRejected, match="symlink"):
        check(adapters, base_facts, version="20260105-000000-s5")


def test_symlinked_weights_out_of_folder(tmp_path, adapters, base_facts):
    weights = adapters / "pa" / V / ADAPTER_WEIGHTS
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(weights, outside)
    os.symlink(outside, weights)
    with pytest.raises(AdapterRejected, match="symlink out of the version folder"):
        check(adapters, base_facts)


def test_unsafe_names_are_not_versions(adapters):
    assert read_version(adapters, "..", "pa") is None
    assert read_version(adapters, "pa", "../pa") is None


def test_a_retrieval_augmented_version_needs_the_index(adapters, base_facts):
    """Trained with k comparables in its prompts (its prompt hash says k): refused by a service
    without an index, with the reason; served in that format by one with an index."""
    from app.model.spec import prompt_hash_for

    manifest = adapters / "pa" / V / MANIFEST
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"prompt_hash": prompt_hash_for(5)}))
    with pytest.raises(AdapterRejected, match="trained with 5 comparables.*no comparables index"):
        check(adapters, base_facts)
    facts = check_static(read_version(adapters, "pa", V), adapters, base_facts, 16, has_index=True)
    assert facts["comparables"] == 5

