"""The serving spec: one source of prompts, cuts, answer tokens, sampling, point rule and engine
arguments for serving, training, validation and the raw-vLLM benchmark."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.config import Settings
from app.items import Item, build_completion, build_prompt
from app.spec import PROMPT_HASH, ServingSpec, text_ceiling, token_budget


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def spec_for(tokenizer, **overrides) -> ServingSpec:
    return ServingSpec.build(Settings(_env_file=None, **overrides), tokenizer)


def test_prompt_hash_is_the_template_and_completion_format():
    expected = json.dumps({"prompt": build_prompt("{text}"), "completion": build_completion(1234.0)}, sort_keys=True)
    assert PROMPT_HASH == "sha256:" + hashlib.sha256(expected.encode()).hexdigest()


def test_point_rule_and_budget_come_from_settings_and_tokenizer(tokenizer):
    spec = spec_for(tokenizer)
    assert spec.family == "digit" and spec.point_rule == "median"  # SmolLM2 writes digits: auto = median
    assert spec_for(tokenizer, point_rule="mean").point_rule == "mean"
    small = Settings(_env_file=None, max_model_len=128, prompt_token_budget=400)
    assert token_budget(small) == 128 - spec.max_tokens
    assert spec_for(tokenizer, max_model_len=128).budget == token_budget(small)
    assert text_ceiling(small) == spec_for(tokenizer, max_model_len=128).char_ceiling


def test_prompts_are_cut_to_the_budget_by_the_one_cutter(tokenizer):
    spec = spec_for(tokenizer, prompt_token_budget=60)
    short = "Acme desk lamp\nA small lamp."
    assert spec.item_prompt(short) == build_prompt(short) and spec.cut(short) == short
    long = "Acme espresso machine\n" + "steam wand and grinder " * 500
    assert all(len(ids) <= 60 for ids in spec.prompt_ids([long, short]))
    assert spec.item_prompt(long) == build_prompt(spec.cut(long))


def test_training_examples_fit_their_length_and_end_in_the_price(tokenizer):
    spec = spec_for(tokenizer)
    item = Item(title="Acme drill", price=123.4, text="Acme drill\n" + "brushless motor, two batteries " * 100)
    example = spec.training_example(item, max_length=96)
    assert example["completion"] == "123.00" and example["prompt"].endswith("Price is $")
    assert len(tokenizer(example["prompt"] + example["completion"]).input_ids) <= 96


def test_sampling_and_engine_arguments_have_one_source(tokenizer, tmp_path):
    spec = spec_for(tokenizer, top_logprobs=7, max_num_seqs=3)
    sampling = spec.sampling_kwargs()
    assert sampling["temperature"] == 0.0 and sampling["logprobs"] == 7 and sampling["stop"] == ["."]
    assert set(sampling["allowed_token_ids"]) >= {tokenizer.convert_tokens_to_ids(d) for d in "0123456789"}
    body = spec.completion_body("a prompt", "tiny")
    assert body == {"model": "tiny", "prompt": "a prompt", **sampling}
    model = tmp_path / "tiny"
    kwargs = spec.engine_kwargs(model, device="cpu")
    flags = spec.server_flags(model, device="cpu")
    assert kwargs["max_num_seqs"] == 3 and kwargs["served_model_name"] == "tiny"
    for key, value in kwargs.items():  # every engine argument reaches vLLM's own server too
        flag = "--" + key.replace("_", "-")
        if value is False:
            assert flag not in flags
        elif value is True:
            assert flag in flags
        else:
            assert flags[flags.index(flag) + 1] == str(value)
    assert "gpu_memory_utilization" in spec.engine_kwargs(model, device="cuda")
