"""int8 linear layers with one scale per token (app.estimators.int8_linear): real torch, real kernels."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.training  # compiles with inductor and runs the real transformers model


@pytest.mark.filterwarnings("ignore:.*deprecated")  # torch's notice that eager-mode quantization moves to torchao
def test_a_token_with_huge_channels_does_not_flatten_the_others():
    """One row carrying values in the thousands (as Qwen's first token does) beside ordinary rows: one
    scale per token keeps the ordinary rows' products exact to quantization noise; one scale per call
    (torch's quantize_dynamic, `quantize: int8`) flattens them."""
    import copy

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from app.estimators.int8_linear import quantize_linears

    torch.manual_seed(0)
    exact = torch.nn.Sequential(torch.nn.Linear(48, 24))
    x = torch.randn(30, 48)
    x[0, :3] = 3000.0
    want = exact(x)[1:]
    per_call = quantize_dynamic(copy.deepcopy(exact), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    per_token = copy.deepcopy(exact)
    quantize_linears(per_token)

    token_error = (per_token(x)[1:] - want).abs().max().item()
    call_error = (per_call(x)[1:] - want).abs().max().item()
    assert type(per_token[0]).__name__ == "Int8TokenLinear"
    assert token_error < 0.05 < call_error, (token_error, call_error)


def test_any_number_of_rows_and_odd_widths_keep_their_shape():
    import torch

    from app.estimators.int8_linear import quantize_linears

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(13, 7), torch.nn.Linear(7, 5, bias=False))
    for shape in [(1, 13), (3, 4, 13), (40, 13)]:  # fewer rows than _int_mm takes: padded, then dropped
        x = torch.randn(*shape)
        want = model(x)
        copy = torch.nn.Sequential(torch.nn.Linear(13, 7), torch.nn.Linear(7, 5, bias=False))
        copy.load_state_dict(model.state_dict())
        quantize_linears(copy)
        got = copy(x)
        assert got.shape == want.shape
        assert torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0) > 0.999


def test_int8_token_states_stay_close_to_the_exact_ones(tiny_model_dir):
    import torch

    from app.estimators.backbone import load_backbone
    from app.estimators.llm_head import hidden_features

    _, model = load_backbone(str(tiny_model_dir), 2, "bfloat16", "int8-token")
    kinds = {type(module).__name__ for module in model.get_decoder().modules()}
    assert "Int8TokenLinear" in kinds and "Linear" not in kinds
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the rest of the model in float32
    texts = ["a blender, 600 watts, glass jar", "a cordless drill with two batteries and a case " * 4]
    exact = torch.from_numpy(hidden_features(tiny_model_dir, texts, progress=False, dtype="float32"))
    per_token = torch.from_numpy(hidden_features(tiny_model_dir, texts, progress=False, quantize="int8-token"))
    assert (exact != per_token).any()
    assert (torch.nn.functional.cosine_similarity(exact, per_token, dim=1) > 0.999).all()


def test_a_bf16_base_loaded_as_stored_is_the_model_a_float32_load_gives(tiny_model_dir, tmp_path):
    """int8-token loads the base in its stored dtype, quantizes, then casts the rest to float32: the
    same int8 weights and float32 parameters as quantizing a float32 load of that checkpoint."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from app.estimators.backbone import load_backbone
    from app.estimators.int8_linear import quantize_linears

    stored = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(stored)
    for name in tiny_model_dir.iterdir():
        if "token" in name.name:
            shutil.copy(name, stored / name.name)
    _, served = load_backbone(str(stored), None, "bfloat16", "int8-token")
    assert AutoModelForCausalLM.from_pretrained(stored, dtype="auto").dtype == torch.bfloat16  # stored in bf16
    reference = AutoModelForCausalLM.from_pretrained(stored, dtype=torch.float32).eval()
    quantize_linears(reference.get_decoder())
    got, want = served.state_dict(), reference.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    assert any(value.dtype == torch.int8 for value in got.values())
