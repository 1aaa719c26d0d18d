"""The serving spec: one source of prompts, cuts, answer tokens, sampling, point rule and engine
arguments for serving, training, validation and the raw-vLLM benchmark."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.config import Settings
from app.model.items import Item
from app.model.prompt import build_completion, build_prompt
from app.model.spec import PROMPT_HASH, ServingSpec, text_ceiling, token_budget


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


# ---------------------------------------------------------------------------------------------
# Retrieval-augmented prompts: k comparables before the item, never the item itself


def _indexed_spec(tokenizer, items, comparables: int, **overrides) -> ServingSpec:
    from app.index.index import Index
    from tests.index.fake_embedder import FakeEmbedder

    spec = ServingSpec.build(Settings(_env_file=None, **overrides), tokenizer, comparables=comparables)
    spec.use_index(Index.from_items(items, FakeEmbedder()))
    return spec


def _priced(title: str, price: float, body: str) -> Item:
    return Item(title=title, price=price, text=f"{title}\n{body}")


def test_each_comparables_count_has_its_own_prompt_hash():
    from app.model.spec import MAX_PROMPT_COMPARABLES, comparables_for_hash, prompt_hash_for

    hashes = [prompt_hash_for(k) for k in range(MAX_PROMPT_COMPARABLES + 1)]
    assert hashes[0] == PROMPT_HASH and len(set(hashes)) == len(hashes)
    assert [comparables_for_hash(h) for h in hashes] == list(range(MAX_PROMPT_COMPARABLES + 1))
    assert comparables_for_hash("sha256:" + "e" * 64) is None and comparables_for_hash(None) is None


def test_prompts_carry_the_nearest_priced_items_but_never_the_item_itself(tokenizer):
    lamp = _priced("Brass desk lamp", 41.0, "adjustable arm, warm bulb")
    items = [
        lamp,
        _priced("Brass floor lamp", 88.0, "adjustable arm, warm bulb, tall"),
        _priced("Steel desk lamp", 35.0, "adjustable arm, cold bulb"),
        _priced("Garden hose reel", 60.0, "hose reel, wall mount"),
    ]
    spec = _indexed_spec(tokenizer, items, comparables=2)
    assert spec.prompt_hash != PROMPT_HASH
    prompt = spec.item_prompt(lamp.text)
    assert prompt.startswith("How much does this cost to the nearest dollar?\n\nSimilar items and their prices:\n")
    assert "- Brass floor lamp: $88\n" in prompt and "- Steel desk lamp: $35\n" in prompt
    assert "$41" not in prompt and "hose" not in prompt.lower()  # not itself, not the farthest
    assert prompt.endswith(f"This item:\n{lamp.text}\n\nPrice is $")
    # the same prompt as token ids, and the course's prompt when an adapter asks with none
    assert spec.prompt_ids([lamp.text]) == [tokenizer(prompt).input_ids]
    assert spec.item_prompt(lamp.text, comparables=0) == build_prompt(lamp.text)


def test_comparables_are_never_cut_and_the_prompt_keeps_its_budget(tokenizer):
    items = [_priced(f"Acme lamp model {i}", 10.0 + i, "adjustable arm") for i in range(6)]
    spec = _indexed_spec(tokenizer, items, comparables=3, prompt_token_budget=90)
    long = "Acme lamp deluxe\n" + "adjustable arm and brass base " * 200
    (ids,) = spec.prompt_ids([long])
    prompt = tokenizer.decode(ids)
    assert len(ids) <= 90 and prompt.count("\n- Acme lamp model") == 3 and prompt.endswith("Price is $")
    example = spec.training_example(Item(title="Acme lamp deluxe", price=19.6, text=long), 96, spec.contexts([long])[0])
    assert example["prompt"].count("\n- Acme lamp model") == 3 and example["completion"] == "20.00"
    assert len(tokenizer(example["prompt"] + example["completion"]).input_ids) <= 96


def test_a_retrieval_augmented_run_without_an_index_is_refused(tokenizer):
    from app.model.spec import ComparablesIndexMissing
    from app.training.data import build_dataset

    spec = ServingSpec.build(Settings(_env_file=None), tokenizer, comparables=5)
    item = _priced("Brass desk lamp", 41.0, "adjustable arm")
    with pytest.raises(ComparablesIndexMissing, match="no index"):
        build_dataset([item], spec, max_length=96)
    assert spec.item_prompt(item.text) == build_prompt(item.text)  # serving: asked without, logged once
