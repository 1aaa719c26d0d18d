"""A tiny training run shared by the training tests: real TRL + peft on the tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model.item_files import write_items
from app.training.config import TrainConfig
from tests.factories import make_items


def tiny_config(tmp: Path, model_dir: Path, **overrides) -> TrainConfig:
    data = tmp / "train.jsonl"
    val = tmp / "val.jsonl"
    if not data.exists():
        write_items(data, make_items(48, seed=1))
        write_items(val, make_items(8, seed=2))
    values = dict(
        data=[data], val=val, val_items=4, base=str(model_dir), store=tmp / "store", name="tiny",
        work_dir=tmp / "runs" / "tiny", lora_r=8, lora_alpha=16, lora_dropout=0.0, learning_rate=5e-3,
        batch_size=4, grad_accum=1, max_steps=4, save_steps=2, max_length=96, logging_steps=1,
        eval_batch_size=8, bf16=False,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_model_dir):
    """(config, exported versions) of one 4-step run that saves at steps 2 and 4."""
    from app.training.run import train

    tmp = tmp_path_factory.mktemp("trained")
    # a high learning rate, so that the adapter visibly changes the model's answers
    config = tiny_config(tmp, tiny_model_dir, learning_rate=3e-2)
    versions = train(config, command="pytest tiny run")
    return config, versions
