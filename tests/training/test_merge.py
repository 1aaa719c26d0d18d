"""`pricer merge`: the merged model answers with the same greedy tokens as base + adapter."""

from __future__ import annotations

import pytest

from app.adapters.manifest import Manifest
from app.config import Settings
from app.model.prompt import build_prompt
from app.training.merge import MergeError, merge
from tests.factories import make_items

pytestmark = pytest.mark.training


def _greedy(model, tokenizer, prompts):
    import torch

    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[:, batch["input_ids"].shape[1] :].tolist()


def test_merged_model_gives_the_same_greedy_tokens(trained_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, versions = trained_run
    adapter = versions[-1]
    merged_dir = merge(adapter, Settings(models_dir=config.store), base=str(tiny_model_dir), store=config.store, dtype="float32")
    assert merged_dir == config.store / "base" / f"tiny-{Manifest.read(adapter).version}-merged"
    assert (merged_dir / "config.json").is_file() and list(merged_dir.glob("*.safetensors"))
    assert not list(merged_dir.parent.glob(".*tmp*"))

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [build_prompt(i.text) for i in make_items(4, seed=5)]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    plain = _greedy(base, tokenizer, prompts)
    with_adapter = _greedy(PeftModel.from_pretrained(base, adapter).eval(), tokenizer, prompts)
    merged = _greedy(AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32), tokenizer, prompts)
    assert merged == with_adapter
    assert with_adapter != plain  # the adapter does something, so the comparison means something


def test_merge_refuses_another_base_and_an_existing_target(trained_run, tmp_path, tokenizer_dir):
    from tests.tiny_model import build_tiny_llama

    config, versions = trained_run
    other = build_tiny_llama(tmp_path / "base" / "other", tokenizer_dir, seed=1)
    with pytest.raises(MergeError, match="another base"):
        merge(versions[-1], Settings(models_dir=tmp_path), base=str(other), store=tmp_path)
    with pytest.raises(MergeError, match="not an adapter version"):
        merge(tmp_path, Settings(models_dir=tmp_path), store=tmp_path)
    with pytest.raises(MergeError, match="not found"):
        merge(versions[-1], Settings(models_dir=tmp_path), base="nowhere", store=tmp_path)
    (tmp_path / "base" / "taken").mkdir()
    with pytest.raises(MergeError, match="exists"):
        merge(versions[0], Settings(models_dir=tmp_path), base=config.base, store=tmp_path, name="taken")
