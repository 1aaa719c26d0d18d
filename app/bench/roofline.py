"""The machine's compute ceiling for the served model: matmul GFLOP/s per dtype, the model's FLOPs per
request, and the requests/s those allow (`pricer bench-cpu`).

FLOPs are counted from the model's config as a dense decoder computes them for one request of
T prompt tokens and G generated tokens (vLLM computes the vocabulary projection only for the
positions it samples from): 2 x (the decoder's matmul parameters) per token, the causal attention
scores and their weighted sum (2 x 2 x T^2/2 x hidden per layer, prefill), and 2 x vocab x hidden per
sampled token. Element-wise work (norms, activations, rotary) is left out: it is under 1% here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MATMUL_SHAPE = (512, 576, 1536)  # (m, k, n): a SmolLM2-sized projection over a 512-token batch


def matmul_gflops(dtype: str, threads: int, shape: tuple[int, int, int] = MATMUL_SHAPE, seconds: float = 1.0) -> float:
    """Best-of-runs GFLOP/s of torch's (m x k) @ (k x n) in `dtype` on `threads` threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        m, k, n = shape
        a = torch.randn(m, k).to(getattr(torch, dtype))
        b = torch.randn(k, n).to(getattr(torch, dtype))
        a @ b  # first call: kernel selection and packing, not counted
        flops, best = 2.0 * m * k * n, 0.0
        deadline = time.perf_counter() + seconds
        while True:
            start = time.perf_counter()
            repeats = 0
            while time.perf_counter() - start < 0.1:
                a @ b
                repeats += 1
            elapsed = time.perf_counter() - start
            best = max(best, flops * repeats / elapsed / 1e9)
            if time.perf_counter() > deadline:
                return best
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> ModelShape:
        heads = config.num_attention_heads
        return cls(layers=config.num_hidden_layers, hidden=config.hidden_size, intermediate=config.intermediate_size,
                   heads=heads, kv_heads=getattr(config, "num_key_value_heads", None) or heads, vocab=config.vocab_size)

    @property
    def matmul_params_per_layer(self) -> int:
        head_dim = self.hidden // self.heads
        attention = self.hidden * self.hidden * 2 + 2 * self.hidden * self.kv_heads * head_dim  # q, o; k, v
        mlp = 3 * self.hidden * self.intermediate  # gate, up, down
        return attention + mlp

    def request_flops(self, prompt_tokens: int, generated_tokens: int, lora_rank: int = 0) -> float:
        tokens = prompt_tokens + generated_tokens
        dense = 2.0 * self.layers * self.matmul_params_per_layer * tokens
        attention = 2.0 * 2.0 * self.layers * self.hidden * (prompt_tokens ** 2 / 2 + generated_tokens * prompt_tokens)
        logits = 2.0 * self.vocab * self.hidden * max(1, generated_tokens)
        # LoRA on every linear layer: two thin matmuls (in x r, r x out) per projection.
        head_dim = self.hidden // self.heads
        sides = 6 * self.hidden + 2 * self.kv_heads * head_dim + 3 * (self.hidden + self.intermediate)
        lora = 2.0 * self.layers * lora_rank * sides * tokens
        return dense + attention + logits + lora


def roofline_requests_per_s(gflops: float, flops_per_request: float) -> float:
    return gflops * 1e9 / flops_per_request if flops_per_request else 0.0
