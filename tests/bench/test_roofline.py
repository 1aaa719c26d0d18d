"""The roofline's FLOP count and matmul measurement (app.bench.roofline)."""

from __future__ import annotations

import pytest

from app.bench.roofline import ModelShape, matmul_gflops, roofline_requests_per_s


def _config(**overrides):
    from transformers import LlamaConfig

    values = dict(vocab_size=1000, hidden_size=128, intermediate_size=320, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaConfig(**(values | overrides))


def test_the_matmul_parameters_are_the_models_linear_weights():
    import torch
    from transformers import LlamaForCausalLM

    config = _config()
    model = LlamaForCausalLM(config)
    linear = sum(m.weight.numel() for name, m in model.model.named_modules() if isinstance(m, torch.nn.Linear))
    shape = ModelShape.from_config(config)
    assert shape.layers * shape.matmul_params_per_layer == linear


def test_request_flops_count_tokens_attention_logits_and_lora():
    shape = ModelShape.from_config(_config())
    dense = 2 * shape.layers * shape.matmul_params_per_layer
    one = shape.request_flops(100, 0)
    assert one == pytest.approx(dense * 100 + 4 * 3 * 128 * 100 ** 2 / 2 + 2 * 1000 * 128)
    assert shape.request_flops(200, 0) > 2 * shape.request_flops(100, 0) - 2 * 2 * 1000 * 128  # attention grows as T^2
    assert shape.request_flops(100, 5) > one  # generated tokens cost the model and the logits again
    lora = shape.request_flops(100, 0, lora_rank=16) - one
    assert 0 < lora < 0.3 * one  # two thin matmuls per projection


def test_smollm2_costs_about_43_gflop_a_served_request():
    """SmolLM2-135M's shape (the served model): a 182-token prompt, 5 answer tokens, LoRA r 16."""
    shape = ModelShape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152)
    assert shape.request_flops(182, 5, 16) / 1e9 == pytest.approx(43.0, abs=1.0)
    assert roofline_requests_per_s(430.0, 43e9) == pytest.approx(10.0)


def test_matmul_gflops_measures_something_positive():
    assert matmul_gflops("float32", 1, shape=(64, 64, 64), seconds=0.1) > 0
