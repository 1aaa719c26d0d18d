"""The QLoRA path (bitsandbytes 4-bit nf4, double quant, bf16 compute) trains on the CPU."""

from __future__ import annotations

import math

import pytest
from safetensors.torch import load_file

from app.adapters.manifest import ADAPTER_WEIGHTS, Manifest
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.training


def test_qlora_takes_training_steps_on_the_cpu(tmp_path, tiny_model_dir):
    import bitsandbytes  # noqa: F401  (the real library, not a stand-in)

    from app.training.run import build_trainer

    config = tiny_config(tmp_path, tiny_model_dir, qlora=True, max_steps=2, save_steps=2, val_items=2, learning_rate=1e-2)
    trainer, exporter, _ = build_trainer(config, command="pytest qlora")
    quantized = [n for n, m in trainer.model.named_modules() if type(m).__name__ == "Linear4bit"]
    assert quantized, "the base was not loaded in 4-bit"
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert trainer.state.global_step == 2 and len(losses) == 2 and all(math.isfinite(x) for x in losses)
    [version] = exporter.versions
    manifest = Manifest.read(version)
    assert manifest.qlora is True and manifest.steps == 2
    assert manifest.validation is not None and manifest.validation.n == 2
    weights = load_file(version / ADAPTER_WEIGHTS)
    assert any(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)
