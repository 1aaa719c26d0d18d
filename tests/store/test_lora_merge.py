"""The merge without peft (app/store/lora_merge.py): on the tiny model, bit-identical to peft's
`merge_and_unload` in bf16 and fp32 (plain, rslora with rank and alpha patterns, adapter weights
stored in bf16), through merge_into's written folder too; and every refusal is a ValueError that
names the file and the feature. peft is here only to make adapters and the reference merge."""

from __future__ import annotations

import json

import pytest

from app.store.lora_merge import CONFIG_FILE, WEIGHTS_FILE, merge_lora, read_lora

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peft_adapter(base_dir, dest, seed=0, std=0.3, adapter_dtype=None, **lora):
    """A real peft LoRA adapter for the base in `base_dir`, its LoRA weights drawn with `std` (large, so
    the merge visibly changes the weights); `adapter_dtype` re-saves its tensors in that dtype."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    options = {"r": 4, "lora_alpha": 8, "target_modules": TARGETS, "lora_dropout": 0.0, "task_type": "CAUSAL_LM", **lora}
    peft_model = get_peft_model(model, LoraConfig(**options))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, std)
    peft_model.save_pretrained(dest, safe_serialization=True)
    if adapter_dtype is not None:
        path = dest / WEIGHTS_FILE
        save_file({k: v.to(getattr(torch, adapter_dtype)) for k, v in load_file(path).items()}, path, {"format": "pt"})
    return dest


def load_base(base_dir, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))


def peft_merged(base_dir, adapter, dtype) -> dict:
    from peft import PeftModel

    return PeftModel.from_pretrained(load_base(base_dir, dtype), adapter).merge_and_unload().state_dict()


def assert_same(ours: dict, theirs: dict) -> None:
    import torch

    assert ours.keys() == theirs.keys()
    differ = [k for k in ours if ours[k].dtype != theirs[k].dtype or not torch.equal(ours[k], theirs[k])]
    assert not differ, f"{len(differ)} tensors differ from peft's merge, first {differ[:3]}"


VARIANTS = {
    "plain": {},
    "rslora-patterns": {"r": 8, "lora_alpha": 16, "use_rslora": True, "rank_pattern": {"q_proj": 2, "down_proj": 6},
                        "alpha_pattern": {"v_proj": 3, r"layers\.1\.mlp\.up_proj": 5}},
    "bf16-adapter": {"adapter_dtype": "bfloat16"},
}


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_merge_is_bit_identical_to_peft(tiny_model_dir, tmp_path, dtype, variant):
    import torch

    adapter = peft_adapter(tiny_model_dir, tmp_path / "adapter", seed=3, **VARIANTS[variant])
    model = load_base(tiny_model_dir, dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert merge_lora(model, adapter) == 2 * len(TARGETS)  # two layers
    ours = model.state_dict()
    assert_same(ours, peft_merged(tiny_model_dir, adapter, dtype))
    changed = {k.rsplit(".", 2)[-2] for k in ours if not torch.equal(ours[k], before[k])}
    assert changed == set(TARGETS)  # every targeted module moved, nothing else


def test_patterns_set_each_modules_rank_and_scaling(tiny_model_dir, tmp_path):
    import math

    adapter = peft_adapter(tiny_model_dir, tmp_path / "adapter", **VARIANTS["rslora-patterns"])
    scaling = {p.module: (p.a.shape[0], p.scaling) for p in read_lora(adapter)}
    assert scaling["model.layers.0.self_attn.q_proj"] == (2, 16 / math.sqrt(2))
    assert scaling["model.layers.0.mlp.down_proj"] == (6, 16 / math.sqrt(6))
    assert scaling["model.layers.1.self_attn.v_proj"] == (8, 3 / math.sqrt(8))
    assert scaling["model.layers.1.mlp.up_proj"] == (8, 5 / math.sqrt(8))
    assert scaling["model.layers.0.mlp.up_proj"] == (8, 16 / math.sqrt(8))


def test_merge_into_writes_what_peft_merges(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    from app.store.merged import merge_into

    adapter = peft_adapter(tiny_model_dir, tmp_path / "adapter", seed=4)
    dest = merge_into(tiny_model_dir, adapter, tmp_path / "merged", "bfloat16")
    written = {}
    for path in dest.glob("*.safetensors"):
        written.update(load_file(path))
    theirs = peft_merged(tiny_model_dir, adapter, "bfloat16")
    assert_same(written, {k: v for k, v in theirs.items() if k in written})
    assert "model.layers.0.self_attn.q_proj.weight" in written


# --- refusals: each a ValueError naming the file and the feature


def edit_config(adapter, **changes):
    path = adapter / CONFIG_FILE
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def edit_weights(adapter, edit):
    from safetensors.torch import load_file, save_file

    path = adapter / WEIGHTS_FILE
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, {"format": "pt"})


@pytest.fixture(scope="module")
def made(tiny_model_dir, tmp_path_factory):
    """Adapters peft itself makes with the features the merge refuses, and a plain one to edit."""
    root = tmp_path_factory.mktemp("refused")
    return {
        "plain": peft_adapter(tiny_model_dir, root / "plain"),
        "dora": peft_adapter(tiny_model_dir, root / "dora", use_dora=True),
        "modules_to_save": peft_adapter(tiny_model_dir, root / "mts", modules_to_save=["lm_head"]),
        "bias": peft_adapter(tiny_model_dir, root / "bias", bias="all"),
        "embedding": peft_adapter(tiny_model_dir, root / "embedding", target_modules=["embed_tokens", "q_proj"]),
    }


def copy_of(made, name, tmp_path):
    import shutil

    return shutil.copytree(made[name], tmp_path / name)


@pytest.mark.parametrize(("name", "file", "feature"), [
    ("dora", CONFIG_FILE, "DoRA"),
    ("modules_to_save", CONFIG_FILE, "modules_to_save"),
    ("bias", CONFIG_FILE, "bias 'all'"),
    ("embedding", WEIGHTS_FILE, "embedding LoRA"),
])
def test_features_peft_has_and_the_merge_lacks_are_refused(made, name, file, feature):
    with pytest.raises(ValueError, match=feature) as refused:
        read_lora(made[name])
    assert file in str(refused.value)


def test_dora_weights_are_refused_even_when_the_config_hides_them(made, tmp_path):
    adapter = copy_of(made, "dora", tmp_path)
    edit_config(adapter, use_dora=False)
    with pytest.raises(ValueError, match=f"{WEIGHTS_FILE}: DoRA"):
        read_lora(adapter)


def _lone_a(tensors):
    del tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]


def _wider_rank(tensors):
    import torch

    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    tensors[key] = torch.zeros(5, tensors[key].shape[1])


def _bias_key(tensors):
    import torch

    tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias"] = torch.zeros(128)


@pytest.mark.parametrize(("config", "weights", "file", "feature"), [
    ({"peft_type": "LOKR"}, None, CONFIG_FILE, "peft_type 'LOKR'"),
    ({"lora_bias": True}, None, CONFIG_FILE, "lora_bias"),
    ({"target_modules": ["q_proj"]}, None, WEIGHTS_FILE, "down_proj is not a module .* target_modules"),
    ({}, _lone_a, WEIGHTS_FILE, "q_proj has lora_A without its other half"),
    ({}, _wider_rank, WEIGHTS_FILE, "q_proj: lora_A shape \\(5, 128\\) .* rank r=4"),
    ({}, _bias_key, WEIGHTS_FILE, "lora_B.bias' is neither a lora_A nor a lora_B weight"),
])
def test_inconsistent_adapters_are_refused(made, tmp_path, config, weights, file, feature):
    adapter = copy_of(made, "plain", tmp_path)
    edit_config(adapter, **config)
    if weights:
        edit_weights(adapter, weights)
    with pytest.raises(ValueError, match=f"{file}: .*{feature}"):
        read_lora(adapter)


def test_missing_and_corrupt_files_are_refused(made, tmp_path):
    with pytest.raises(ValueError, match=f"{CONFIG_FILE}: not found"):
        read_lora(tmp_path / "nowhere")
    adapter = copy_of(made, "plain", tmp_path)
    weights = adapter / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{WEIGHTS_FILE}: cannot be read as safetensors"):
        read_lora(adapter)
    weights.unlink()
    with pytest.raises(ValueError, match=f"{WEIGHTS_FILE}: not found"):
        read_lora(adapter)


def test_what_does_not_fit_the_base_is_refused_before_any_weight_changes(made, tiny_model_dir, tokenizer_dir, tmp_path):
    import torch

    from tests.tiny_model import build_tiny_llama

    model = load_base(tiny_model_dir, "bfloat16")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    absent = copy_of(made, "plain", tmp_path)  # layer 7 of a 2-layer model; layer 0 (merged first) is fine
    edit_weights(absent, lambda t: t.update({k.replace("layers.1.", "layers.7."): t.pop(k) for k in list(t) if "layers.1." in k}))
    with pytest.raises(ValueError, match=f"{WEIGHTS_FILE}: names module model.layers.7.mlp.down_proj, which the base model lacks"):
        merge_lora(model, absent)
    wider = peft_adapter(build_tiny_llama(tmp_path / "wider", tokenizer_dir, hidden=256), tmp_path / "wide")
    with pytest.raises(ValueError, match=f"{WEIGHTS_FILE}: .* does not fit the base weight's shape \\(128, 256\\)"):
        merge_lora(model, wider)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
