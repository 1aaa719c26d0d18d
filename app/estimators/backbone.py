"""The frozen base model a hidden-state head (llm-head, knowledge) reads: loaded once per process,
cut to its first `depth` decoder layers, optionally with int8 linear layers.

`quantize="int8"`: the decoder's linear layers become dynamically quantized int8 (torch's
quantize_dynamic, weights per output channel, activations one scale per call); the rest of the model
(embeddings, norms, attention) computes in float32. The head is fitted on the same quantized features
it serves. For the knowledge member on the 2-core AVX-512 EPYC it took 0.62 s an item at batch 16
(bf16 about 0.9) but cost RMSLE +0.028 on val, significant (docs/ensemble.md, the variants measured at
seed 42): one scale for a whole batch of activations loses the small channels beside Qwen's outlier
ones. So it is an option, not the default.

`quantize="int8-token"` (app.estimators.int8_linear): the same int8 weights, but each token's
activations get their own scale, so a token with outlier channels no longer flattens every other
token of the batch.
"""

from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from functools import lru_cache

QUANTIZE = ("none", "int8", "int8-token")  # what a head's `quantize` may name


@lru_cache(maxsize=2)
def load_backbone(model_dir: str, depth: int | None = None, dtype: str = "bfloat16", quantize: str = "none"):
    """(tokenizer, model) of the base in `model_dir`: the first `depth` decoder layers (None or more
    than it has: all of them) in `dtype`, or float32 with int8 linear layers under quantize="int8" or "int8-token"."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if quantize == "int8":
        dtype = "float32"  # quantize_dynamic converts float32 linear layers
    elif quantize == "int8-token":
        # Loaded as stored (a bf16 checkpoint: half the memory and time of a float32 load), each
        # linear layer's weights quantized from their exact values, then the rest cast to float32:
        # the same model as a float32 load gives.
        dtype = "auto"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # depth: only the first `depth` decoder layers are built and loaded (the rest of the weights are
    # skipped); a model with fewer layers (the tests' tiny one) runs them all.
    total = AutoConfig.from_pretrained(model_dir).num_hidden_layers
    if not depth or depth >= total:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=_torch_dtype(dtype))
    else:
        # transformers would print a "LOAD REPORT" listing every skipped layer's weights as unexpected
        # on each load; that report is silenced and the load is checked here instead. With its logger
        # at ERROR, transformers also checks the model's tensor-parallel plan and warns, on its own
        # logger, that the layer norms "were not sharded" (nothing is sharded on a CPU): silenced too.
        with _quiet("transformers.modeling_utils", "transformers.distributed.tensor_parallel"):
            model, info = AutoModelForCausalLM.from_pretrained(
                model_dir, dtype=_torch_dtype(dtype), num_hidden_layers=depth, output_loading_info=True)
        check_cut_load(info, depth, model_dir)
    model.eval()
    if quantize == "int8":
        _quantize_int8(model.get_decoder())  # the decoder only: the vocabulary projection never runs
    elif quantize == "int8-token":
        from app.estimators.int8_linear import quantize_linears

        quantize_linears(model.get_decoder())
        model.float()  # int8 linear layers take and give float32 activations
    return tokenizer, model


def computed_dtype(dtype: str, quantize: str) -> str:
    """What the model's non-int8 parts compute in: float32 whenever the linear layers are quantized
    (both int8 paths take and give float32 activations), else `dtype`. The vector cache keys rows by it."""
    return dtype if quantize == "none" else "float32"


def _torch_dtype(name: str):
    import torch

    return name if name == "auto" else getattr(torch, name)


def _quantize_int8(module) -> None:
    """The module's nn.Linear layers replaced, in place, by dynamically quantized int8 ones."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.13 announces that eager-mode quantization is moving to torchao; it still works and
        # needs no extra package, so the announcement is not repeated on every load.
        warnings.simplefilter("ignore")
        quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


_LAYER_KEY = re.compile(r"\.layers\.(\d+)\.")


def check_cut_load(info: dict, depth: int, model_dir: str) -> None:
    """A base loaded with its first `depth` layers: every weight it needs was there, and every weight
    left over belongs to a layer at or past `depth`; anything else is a broken base folder."""
    missing = list(info.get("missing_keys") or [])
    stray = [key for key in info.get("unexpected_keys") or []
             if not ((found := _LAYER_KEY.search(key)) and int(found.group(1)) >= depth)]
    problems = list(info.get("mismatched_keys") or []) + list(info.get("error_msgs") or [])
    if missing or stray or problems:
        raise RuntimeError(f"llm-head: base {model_dir} cut to {depth} layers did not load cleanly: "
                           f"missing {missing[:5]}, unexpected {stray[:5]}, other {problems[:5]}")


@contextmanager
def _quiet(*logger_names: str):
    """Raise transformers loggers to ERROR for the duration (their levels restored afterwards)."""
    from transformers.utils import logging as hf_logging

    loggers = [hf_logging.get_logger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
