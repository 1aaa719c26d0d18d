"""A peft LoRA adapter folded into a loaded base model with torch and safetensors alone: for each
targeted module, W += scaling * (B @ A).

Why not peft's `merge_and_unload`: peft belongs to the train extra, and the lean serve install
(`make serve`: extras cpu,serve,embed) does not have it, yet merged serving mode
(PRICER_ADAPTER_MODE=merged, app/engine/merged.py) merges every version it serves, and `pricer merge`
(app/training/merge.py) should run wherever the service does. Both go through app/store/merged.py,
which loads the base with transformers and calls `merge_lora` here.

What is read: adapter_config.json (peft's LoRA format: r, lora_alpha, use_rslora, rank_pattern,
alpha_pattern, target_modules, exclude_modules) and adapter_model.safetensors (keys
`base_model.model.<module>.lora_A.weight` and `.lora_B.weight`). The keys decide which modules are
merged; a key whose module target_modules does not name is refused (peft would ignore it).

Numerics are peft's (0.21: `LoraModel._create_and_replace`, `Linear.get_delta_weight`, `merge`):
scaling = alpha / r (alpha / sqrt(r) with use_rslora), r and alpha per module from rank_pattern and
alpha_pattern (peft's `get_pattern_key`: the first pattern that matches the end of the module's name);
peft loads A and B in float32 (it casts bf16/fp16 adapter weights up), computes
(B @ A), transposed for a Conv1D module, times scaling in float32, and adds that to the base weight
in place, which rounds once to the weight's dtype (casting the delta to bf16 first, a second
rounding, differs from peft in every merged bf16 weight of the tiny model). The same operations in
the same order give weights bit-identical to peft's on the tests' tiny model in bf16 and fp32
(tests/store/test_lora_merge.py). As in peft, the module's type decides the transpose: peft corrects
a fan_in_fan_out that disagrees with it (False on Conv1D, True on nn.Linear), with a warning.

Refused, with a ValueError naming the file and the feature: a peft_type other than LORA, DoRA and
the other LoRA variants, modules_to_save, a bias other than "none", lora_bias, embedding LoRA
(lora_embedding_A/B), a key naming a module the base lacks or that is neither Linear nor Conv1D,
A and B whose shapes do not fit each other, the rank or the base weight, and an unreadable file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PREFIX = "base_model.model."
_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<half>[AB])\.weight")

# adapter_config.json keys whose truthy value turns on something this merge does not do
UNSUPPORTED = {
    "use_dora": "DoRA (use_dora)",
    "modules_to_save": "modules_to_save (whole modules saved beside the LoRA pairs)",
    "lora_bias": "a bias on lora_B (lora_bias)",
    "trainable_token_indices": "trainable tokens (trainable_token_indices)",
    "target_parameters": "LoRA on parameters (target_parameters)",
    "layer_replication": "layer replication (layer_replication)",
    "use_qalora": "QA-LoRA (use_qalora)",
    "alora_invocation_tokens": "activated LoRA (alora_invocation_tokens)",
    **{key: f"the LoRA variant {key}" for key in ("velora_config", "monteclora_config", "use_bdlora", "arrow_config",
                                                  "kasa_config")},
}


@dataclass(frozen=True)
class LoraPair:
    module: str  # the module's name in the base model (model.layers.0.self_attn.q_proj)
    a: object  # torch.Tensor (r, in)
    b: object  # torch.Tensor (out, r)
    scaling: float


def _refuse(path: Path, what: str) -> ValueError:
    return ValueError(f"{path}: {what}")


def _pattern_key(patterns, name: str) -> str:
    """peft's get_pattern_key: the first pattern matching the end of `name` (at a dot), else `name`."""
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", name):
            return key
    return name


def _matches(modules, name: str) -> bool:
    """peft's match of target_modules / exclude_modules: a regex for the whole name, or a list of names
    or name endings."""
    if isinstance(modules, str):
        return modules == "all-linear" or re.fullmatch(modules, name) is not None
    return name in modules or any(name.endswith(f".{m}") for m in modules)


def read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _refuse(path, "not found (no peft adapter here)") from None
    except (OSError, ValueError) as e:
        raise _refuse(path, f"cannot be read as JSON ({e})") from None
    if not isinstance(config, dict):
        raise _refuse(path, "is not a JSON object")
    if config.get("peft_type") != "LORA":
        raise _refuse(path, f"peft_type {config.get('peft_type')!r} is not supported (only LORA)")
    for key, feature in UNSUPPORTED.items():
        if config.get(key):
            raise _refuse(path, f"{feature} is not supported by the merge")
    if config.get("init_lora_weights") == "mica":
        raise _refuse(path, "the LoRA variant init_lora_weights='mica' is not supported by the merge")
    if (config.get("bias") or "none") != "none":
        raise _refuse(path, f"bias {config['bias']!r} is not supported by the merge (only 'none')")
    r, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise _refuse(path, f"r {r!r} is not a positive integer")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
        raise _refuse(path, f"lora_alpha {alpha!r} is not a number")
    for key in ("rank_pattern", "alpha_pattern"):
        if not isinstance(config.get(key) or {}, dict):
            raise _refuse(path, f"{key} is not a mapping")
    if not config.get("target_modules"):
        raise _refuse(path, "names no target_modules")
    return config


def scaling_for(config: dict, module: str) -> tuple[int, float]:
    """(r, scaling) of `module` as peft sets them: patterns first, then alpha / r or alpha / sqrt(r)."""
    ranks, alphas = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    r = ranks.get(_pattern_key(ranks.keys(), module), config["r"])
    alpha = alphas.get(_pattern_key(alphas.keys(), module), config["lora_alpha"])
    return r, (alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r)


def read_lora(folder: Path | str) -> list[LoraPair]:
    """The adapter's A/B pairs with their scaling, checked against its own config (no base needed)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        hint = " (adapter_model.bin is pickle and is not read)" if (folder / "adapter_model.bin").exists() else ""
        raise _refuse(path, f"not found{hint}")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise _refuse(path, f"cannot be read as safetensors ({e})") from None
    for marker, feature in ((".lora_embedding_", "embedding LoRA (lora_embedding_A/B"), (".lora_magnitude_vector", "DoRA (")):
        found = sorted(k for k in tensors if marker in k)
        if found:  # named before any other key they come with (peft saves the whole embedding beside them)
            raise _refuse(path, f"{feature}, key {found[0]!r}) is not supported by the merge")
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        rest = key[len(PREFIX):] if key.startswith(PREFIX) else None
        if rest is None:
            raise _refuse(path, f"key {key!r} is not a peft LoRA key (no {PREFIX!r} prefix)")
        m = _KEY.fullmatch(rest)
        if m is None:
            raise _refuse(path, f"key {key!r} is neither a lora_A nor a lora_B weight (a bias or a saved module: "
                                "not supported by the merge)")
        halves.setdefault(m["module"], {})[m["half"]] = tensor
    if not halves:
        raise _refuse(path, "holds no LoRA weights")
    pairs = []
    for module, half in sorted(halves.items()):
        if set(half) != {"A", "B"}:
            raise _refuse(path, f"{module} has lora_{''.join(half)} without its other half")
        excluded = config.get("exclude_modules")
        if not _matches(config["target_modules"], module) or (excluded and _matches(excluded, module)):
            raise _refuse(path, f"{module} is not a module adapter_config.json's target_modules names")
        a, b = half["A"], half["B"]
        r, scaling = scaling_for(config, module)
        if a.dim() != 2 or b.dim() != 2 or not a.is_floating_point() or not b.is_floating_point():
            raise _refuse(path, f"{module}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} are not 2-D float "
                                "matrices (shape)")
        if a.shape[0] != r or b.shape[1] != r:
            raise _refuse(path, f"{module}: lora_A shape {tuple(a.shape)} and lora_B shape {tuple(b.shape)} do not "
                                f"have the rank r={r} of {CONFIG_FILE}")
        pairs.append(LoraPair(module, a, b, scaling))
    return pairs


def merge_lora(model, folder: Path | str, pairs: list[LoraPair] | None = None) -> int:
    """Fold the adapter in `folder` (`pairs`: its read_lora, when the caller has it) into `model` (a
    transformers model, its weights changed in place), as peft's merge_and_unload would; returns how
    many modules were merged. Everything is checked before any weight changes."""
    import torch
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    path = Path(folder) / WEIGHTS_FILE
    pairs = read_lora(folder) if pairs is None else pairs
    modules = dict(model.named_modules())
    planned = []
    for pair in pairs:
        module = modules.get(pair.module)
        if module is None:
            raise _refuse(path, f"names module {pair.module}, which the base model lacks")
        if isinstance(module, Conv1D):
            transposed = True  # GPT-2's Conv1D keeps its weight as (in, out): peft's fan_in_fan_out
        elif isinstance(module, nn.Linear):
            transposed = False
        else:
            raise _refuse(path, f"{pair.module} is a {type(module).__name__}: LoRA on it is not supported by the "
                                "merge (only Linear and Conv1D)")
        fits = (pair.b.shape[0], pair.a.shape[1])
        if tuple(module.weight.shape) != (fits[::-1] if transposed else fits):
            raise _refuse(path, f"{pair.module}: lora_B {tuple(pair.b.shape)} x lora_A {tuple(pair.a.shape)} does not "
                                f"fit the base weight's shape {tuple(module.weight.shape)} (size mismatch)")
        planned.append((pair, module.weight, transposed))
    with torch.no_grad():
        for pair, weight, transposed in planned:
            compute = torch.promote_types(weight.dtype, torch.float32)  # peft's adapter weights: float32
            a = pair.a.to(device=weight.device, dtype=compute)
            b = pair.b.to(device=weight.device, dtype=compute)
            delta = b @ a
            delta = (delta.T if transposed else delta) * pair.scaling
            weight.data += delta  # in place, as peft: added in float32, rounded once to the weight's dtype
    return len(planned)
