"""A few real training steps: the LoRA weights move, and only the price carries loss."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from app.adapters.manifest import ADAPTER_WEIGHTS
from app.model.prompt import build_completion
from app.model.item_files import load_items
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.training


def test_steps_change_the_lora_weights(trained_run):
    _, versions = trained_run
    first, last = (load_file(v / ADAPTER_WEIGHTS) for v in (versions[0], versions[-1]))
    lora_b = [k for k in last if "lora_B" in k]
    assert lora_b, "no LoRA B matrices in the adapter"
    # peft starts B at zero: any non-zero B was learned.
    assert any(last[k].abs().max() > 0 for k in lora_b)
    assert any(not first[k].equal(last[k]) for k in last)


def test_only_the_price_tokens_carry_loss(tmp_path, tiny_model_dir):
    from app.training.run import build_trainer

    config = tiny_config(tmp_path, tiny_model_dir)
    trainer, _, _ = build_trainer(config, command="pytest")
    tokenizer = trainer.processing_class
    items = load_items(config.data[0])
    rows = [trainer.train_dataset[i] for i in range(3)]
    batch = trainer.data_collator(rows)
    for row in range(len(rows)):
        labels = batch["labels"][row]
        scored = batch["input_ids"][row][labels != -100].tolist()
        text = tokenizer.decode(scored)
        assert text.endswith(tokenizer.eos_token)
        completion = text[: -len(tokenizer.eos_token)]
        # the completion is a price like "123.00", nothing of the prompt
        assert completion.endswith(".00") and completion[:-3].isdigit(), text
        prompt_ids = batch["input_ids"][row][labels == -100]
        assert tokenizer.decode(prompt_ids[batch["attention_mask"][row][labels == -100] == 1]).endswith("Price is $")
        assert completion == build_completion(items[row].price)
