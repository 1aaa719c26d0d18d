"""The CPU LoRA plugin computes exactly what vLLM's own PyTorch LoRA ops compute."""

from __future__ import annotations

import pytest
import torch

from app.engine import cpu_lora

lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")



def _fresh_vllm_ops():
    """vLLM's own ops, loaded from their file into a private module: the plugin may already have
    patched the imported module in this process (any test that started an engine loads it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vllm_lora_ops_unpatched", lora_ops.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_VLLM = _fresh_vllm_ops()
ORIGINAL = {name: getattr(_VLLM, name) for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")}


def _case(seed: int, tokens: int, rank: int, width: int, indices: list[int]):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, width, generator=g, dtype=torch.bfloat16)
    # vLLM stacks weights as [max_loras, 1, out, in]
    a = torch.randn(3, 1, rank, width, generator=g, dtype=torch.bfloat16)
    b = torch.randn(3, 1, width, rank, generator=g, dtype=torch.bfloat16)
    idx = torch.tensor(indices, dtype=torch.long)
    return x, a, b, idx


@pytest.mark.parametrize("indices", [[0] * 6, [1, 1, 0, 2, 0, 1], [-1, 0, -1, 2, 2, 1]])
def test_shrink_and_expand_match_vllm(indices):
    x, a, b, idx = _case(0, len(indices), 4, 32, indices)
    ours_small = torch.zeros(len(indices), 4, dtype=torch.float32)
    theirs_small = torch.zeros_like(ours_small)
    cpu_lora.bgmv_shrink(x, a, ours_small, idx, 0.5)
    ORIGINAL["bgmv_shrink"](x, a, theirs_small, idx, 0.5)
    torch.testing.assert_close(ours_small, theirs_small, rtol=1e-2, atol=1e-2)

    for add in (True, False):
        base = torch.randn(len(indices), 32, dtype=torch.bfloat16)
        ours, theirs = base.clone(), base.clone()
        cpu_lora.bgmv_expand(theirs_small, b, ours, idx, add_inputs=add)
        ORIGINAL["bgmv_expand"](theirs_small, b, theirs, idx, add_inputs=add)
        torch.testing.assert_close(ours, theirs, rtol=2e-2, atol=5e-2)
        assert not torch.equal(ours, base) or not add


def test_expand_slice_writes_only_its_slice():
    x, a, b, idx = _case(1, 5, 4, 16, [0, 1, 1, 2, 0])
    small = torch.randn(5, 4, dtype=torch.bfloat16)
    base = torch.randn(5, 48, dtype=torch.bfloat16)
    ours, theirs = base.clone(), base.clone()
    cpu_lora.bgmv_expand_slice(small, b, ours, idx, 16, 16, add_inputs=True)
    ORIGINAL["bgmv_expand_slice"](small, b, theirs, idx, 16, 16, add_inputs=True)
    torch.testing.assert_close(ours, theirs, rtol=2e-2, atol=5e-2)
    assert torch.equal(ours[:, :16], base[:, :16]) and torch.equal(ours[:, 32:], base[:, 32:])


def test_plugin_is_registered_for_vllm():
    from importlib.metadata import entry_points

    names = {e.value for e in entry_points(group="vllm.general_plugins")}
    assert "app.engine.cpu_lora:register" in names
