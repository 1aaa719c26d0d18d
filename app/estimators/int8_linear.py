"""Linear layers in int8 with one scale per token: `quantize: int8-token` of a hidden-state head.

Weights: int8, one scale per output channel. Activations: quantized on the fly, one scale per row
(token), so that a token with a few huge channels (Qwen's first token carries values in the
thousands) only coarsens itself; torch's quantize_dynamic takes one scale per call, and that cost
the knowledge member RMSLE +0.03 (app.estimators.backbone). The product is torch._int_mm (int8 x
int8 -> int32, VNNI on AVX-512 CPUs); the quantize and dequantize steps are compiled with inductor
(dynamic shapes, so texts of any length reuse one graph), which fuses their passes over the
activations; where compiling fails they run eagerly, to the same answers up to float rounding.
"""

from __future__ import annotations

import logging
from functools import lru_cache

log = logging.getLogger(__name__)

MIN_ROWS = 17  # torch._int_mm wants more than 16 rows: shorter inputs are padded with zero rows


def _quantize_rows(x):
    """(int8 rows, float32 scale per row): each row scaled so that its largest magnitude is 127."""
    import torch

    x = x.float()
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / 127
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale


def _dequantize(product, row_scale, column_scale, bias):
    out = product.float() * row_scale * column_scale
    return out if bias is None else out + bias


@lru_cache(maxsize=1)
def _kernels():
    """The quantize and dequantize steps, compiled when inductor works here (checked on a small input
    against the eager steps), else eager."""
    import torch

    try:
        quantize = torch.compile(_quantize_rows, dynamic=True)
        dequantize = torch.compile(_dequantize, dynamic=True)
        probe = torch.randn(MIN_ROWS, 32)
        rows, scale = quantize(probe)
        eager_rows, eager_scale = _quantize_rows(probe)
        if (rows.to(torch.int16) - eager_rows.to(torch.int16)).abs().max() > 1 or not torch.allclose(scale, eager_scale):
            raise RuntimeError("compiled quantization differs from the eager one")
        dequantize(torch.ones(MIN_ROWS, 8, dtype=torch.int32), scale, torch.ones(8), None)
        return quantize, dequantize
    except Exception as e:  # no C++ compiler, an inductor that cannot build here: the same maths, eagerly
        log.warning("int8 linear layers run eagerly (inductor could not compile them: %s: %s)", type(e).__name__, e)
        return _quantize_rows, _dequantize


@lru_cache(maxsize=1)
def _int8_linear_class():
    import torch

    class Int8TokenLinear(torch.nn.Module):
        """An nn.Linear's product in int8: weights per output channel, activations per token."""

        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            weight = linear.weight.detach().float()
            column_scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
            quantized = torch.round(weight / column_scale[:, None]).clamp(-127, 127).to(torch.int8)
            self.register_buffer("weight_t", quantized.t())  # (in, out): _int_mm's right operand
            self.register_buffer("column_scale", column_scale)
            self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
            self.in_features, self.out_features = linear.in_features, linear.out_features

        def forward(self, x):
            quantize, dequantize = _kernels()
            shape = x.shape
            rows, row_scale = quantize(x.reshape(-1, shape[-1]))
            count = rows.shape[0]
            if count < MIN_ROWS:
                rows = torch.nn.functional.pad(rows, (0, 0, 0, MIN_ROWS - count))
            product = torch._int_mm(rows, self.weight_t)[:count]
            return dequantize(product, row_scale, self.column_scale, self.bias).reshape(*shape[:-1], self.out_features)

    return Int8TokenLinear


def quantize_linears(module) -> None:
    """Every nn.Linear under `module` replaced, in place, by its int8 per-token version."""
    import torch

    cls = _int8_linear_class()
    for name, child in list(module.named_children()):
        if type(child) is torch.nn.Linear:
            setattr(module, name, cls(child))
        else:
            quantize_linears(child)
