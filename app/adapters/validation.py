"""Checks a version must pass before it is served.

Static checks (no engine): the folder resolves inside the store with no symlink or `..` escape;
adapter_config.json says LoRA; the manifest's prompt hash is the served prompt's (app.model.spec); the
base fingerprint in the manifest matches the served base; the
rank fits max_lora_rank; every target module exists in the base; the weights file is complete
safetensors with finite values. Then, once loaded into the engine, a smoke check: a few items must
come back with usable prices. Each failure raises AdapterRejected with a reason a person can act on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from app.adapters.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST
from app.adapters.store import AdapterVersion
from app.engine.base import AdapterRef, Engine
from app.model.spec import MAX_PROMPT_COMPARABLES, PROMPT_HASH, comparables_for_hash

# Generic descriptions for the smoke check: built in, so it needs no data files.
SMOKE_TEXTS = (
    "Stainless steel electric kettle, 1.7 liters\nCordless kettle with auto shut-off and boil-dry protection.",
    "USB-C charging cable, 6 feet\nBraided nylon cable, fast charging, works with phones and laptops.",
    "Ergonomic office chair with lumbar support\nAdjustable height, mesh back, padded arm rests, 300 lb capacity.",
    "Replacement refrigerator water filter\nCompatible with most side-by-side models, 6 months of filtered water.",
    "Cordless drill driver kit, 20V\nTwo batteries, charger, 24 bits and a carrying case.",
    "Acoustic guitar strings, light gauge\nPhosphor bronze, three sets per pack.",
    "Dishwasher drain pump assembly\nOEM part, fits many built-in dishwashers.",
    "Wireless mouse, 2.4 GHz\nSilent clicks, 18-month battery life, USB receiver included.",
)


class AdapterRejected(Exception):
    """A version that must not be served; str(e) is the reason."""


@dataclass(frozen=True)
class BaseFacts:
    """What a version is checked against: the served base's fingerprint and module names."""

    fingerprint: str
    module_names: frozenset[str]  # every dotted path component of every weight, e.g. q_proj, layers
    module_paths: frozenset[str]  # full module paths, e.g. model.layers.0.self_attn.q_proj


def read_base_facts(base_dir: Path) -> BaseFacts:
    from app.store.base import fingerprint

    base_dir = Path(base_dir)
    keys: set[str] = set()
    index = base_dir / "model.safetensors.index.json"
    if index.is_file():
        keys.update(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
    else:
        from safetensors import safe_open

        for file in sorted(base_dir.glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as handle:
                keys.update(handle.keys())
    paths = {key.rsplit(".", 1)[0] for key in keys}
    names = {part for path in paths for part in path.split(".") if not part.isdigit()}
    return BaseFacts(fingerprint(base_dir), frozenset(names), frozenset(paths))


def check_static(version: AdapterVersion, adapters_dir: Path, base: BaseFacts, max_rank: int, has_index: bool = False) -> dict:
    """Raises AdapterRejected; returns a few facts about the adapter (rank, targets, tensors, and
    `comparables`: the prompt format it is asked in). `has_index`: the service can retrieve
    comparables (an adapter trained with them is refused without)."""
    if version.problem:
        raise AdapterRejected(version.problem)
    folder = _check_inside_store(version, Path(adapters_dir))
    config = _read_lora_config(folder)
    manifest = version.manifest
    assert manifest is not None  # a version without one carries `problem`
    comparables = check_prompt(manifest.prompt_hash, has_index)
    if manifest.base_fingerprint != base.fingerprint:
        raise AdapterRejected(
            f"trained on another base ({manifest.base_model}, {manifest.base_fingerprint[:19]}...), "
            f"the served base is {base.fingerprint[:19]}..."
        )
    ranks = [int(config.get("r") or 0), manifest.lora_rank, *[int(r) for r in (config.get("rank_pattern") or {}).values()]]
    if max(ranks) > max_rank:
        raise AdapterRejected(f"LoRA rank {max(ranks)} is over the engine's limit max_lora_rank={max_rank}")
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else list(targets)
    missing = [t for t in targets if not _module_exists(t, base)]
    if missing:
        raise AdapterRejected(f"target modules not in the base model: {', '.join(sorted(missing))}")
    tensors = _check_weights(folder / ADAPTER_WEIGHTS)
    return {"rank": max(ranks), "targets": targets, "tensors": tensors, "comparables": comparables}


def check_prompt(recorded: str | None, has_index: bool = False) -> int:
    """A version is served only under the prompt it was trained with (the hashes in app.model.spec): the
    course's prompt, or the same with k comparables when the service has an index. Returns k."""
    if recorded is None:
        raise AdapterRejected(
            f"the manifest records no prompt hash, so the prompt it was trained under is unknown; if it was "
            f"trained with the served prompt, add \"prompt_hash\": \"{PROMPT_HASH}\" to its manifest.json"
        )
    comparables = comparables_for_hash(recorded)
    if comparables is None:
        raise AdapterRejected(
            f"trained under another prompt (prompt hash {recorded[:19]}...), not one this service builds "
            f"(the course's prompt is {PROMPT_HASH[:19]}..., with 1 to {MAX_PROMPT_COMPARABLES} comparables others)"
        )
    if comparables and not has_index:
        raise AdapterRejected(
            f"trained with {comparables} comparables in its prompts, but this service has no comparables index "
            f"(build one with `make index`, then restart)"
        )
    return comparables


def _check_inside_store(version: AdapterVersion, adapters_dir: Path) -> Path:
    store = adapters_dir.resolve()
    for path in (version.path.parent, version.path):
        if path.is_symlink():
            raise AdapterRejected(f"{path.relative_to(adapters_dir)} is a symlink; the store holds real folders only")
    folder = version.path.resolve()
    if not folder.is_relative_to(store) or folder == store:
        raise AdapterRejected("the version folder resolves outside the adapter store")
    for name in (MANIFEST, ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        file = version.path / name
        if file.is_symlink() and not file.resolve().is_relative_to(folder):
            raise AdapterRejected(f"{name} is a symlink out of the version folder")
    return folder


def _read_lora_config(folder: Path) -> dict:
    path = folder / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterRejected(f"{ADAPTER_CONFIG} is missing") from None
    except (OSError, ValueError) as e:
        raise AdapterRejected(f"{ADAPTER_CONFIG} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        kind = config.get("peft_type") if isinstance(config, dict) else type(config).__name__
        raise AdapterRejected(f"{ADAPTER_CONFIG} is not a LoRA adapter (peft_type {kind!r})")
    return config


def _module_exists(target: str, base: BaseFacts) -> bool:
    if target == "all-linear" or target in base.module_names:
        return True
    return any(path == target or path.endswith("." + target) for path in base.module_paths)


def _check_weights(path: Path) -> int:
    if not path.is_file():
        raise AdapterRejected(f"{ADAPTER_WEIGHTS} is missing")
    import torch
    from safetensors import safe_open

    count = 0
    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                tensor = handle.get_tensor(key)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise AdapterRejected(f"{ADAPTER_WEIGHTS}: tensor {key} has NaN or infinite values")
                count += 1
    except AdapterRejected:
        raise
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise AdapterRejected(f"{ADAPTER_WEIGHTS} is not complete safetensors: {e}") from None
    if count == 0:
        raise AdapterRejected(f"{ADAPTER_WEIGHTS} holds no tensors")
    return count


async def smoke_check(engine: Engine, ref: AdapterRef, n: int) -> dict:
    """Price `n` built-in items with the adapter; every price must be a finite number >= 0."""
    if n <= 0:
        return {"items": 0}
    texts = [SMOKE_TEXTS[i % len(SMOKE_TEXTS)] for i in range(n)]
    try:
        estimates = await engine.estimate(texts, ref)
    except Exception as e:  # the engine refused the adapter at run time, or it produced no price
        raise AdapterRejected(f"smoke check failed: {type(e).__name__}: {e}") from None
    prices = [e.price for e in estimates]
    bad = [p for p in prices if not (isinstance(p, (int, float)) and math.isfinite(p) and p >= 0)]
    if len(prices) != n or bad:
        raise AdapterRejected(f"smoke check: {len(bad)} of {n} items got no usable price ({bad[:3]})")
    return {"items": n, "prices": [round(p, 2) for p in prices]}
