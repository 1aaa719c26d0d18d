"""A small synthetic model store for `pricer bench-fleet` on the fake engine: a base folder (config
and one safetensors file) and LoRA adapter versions that pass every static check against it (the
served prompt hash, the base fingerprint, rank, targets, finite weights). Nothing here is a model:
the fake engine answers; the point is the replicas' following of the desired state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.runtime.atomic import atomic_write_text, building

HIDDEN = 16
TARGETS = ("q_proj", "v_proj")


def _save(tensors: dict, path: Path) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))


def make_base(root: Path, name: str = "bench-base") -> Path:
    base = Path(root) / "base" / name
    if (base / "config.json").is_file():
        return base
    with building(base) as tmp:
        config = {"model_type": "llama", "hidden_size": HIDDEN, "num_hidden_layers": 1, "architectures": ["LlamaForCausalLM"]}
        atomic_write_text(tmp / "config.json", json.dumps(config) + "\n")
        rng = np.random.default_rng(0)
        _save({f"model.layers.0.self_attn.{t}.weight": rng.normal(size=(HIDDEN, HIDDEN)).astype(np.float32) for t in TARGETS},
              tmp / "model.safetensors")
    return base


def make_adapter(root: Path, base: Path, name: str, version: str, seed: int, rank: int = 4) -> Path:
    from app.adapters.manifest import Manifest, ValidationScores
    from app.model.spec import PROMPT_HASH
    from app.store.base import fingerprint

    dest = Path(root) / "adapters" / name / version
    with building(dest) as tmp:
        config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
                  "target_modules": list(TARGETS), "base_model_name_or_path": str(base)}
        atomic_write_text(tmp / "adapter_config.json", json.dumps(config) + "\n")
        rng = np.random.default_rng(seed)
        _save({f"base_model.model.model.layers.0.self_attn.{t}.lora_{ab}.weight": rng.normal(size=shape).astype(np.float32)
               for t in TARGETS for ab, shape in (("A", (rank, HIDDEN)), ("B", (HIDDEN, rank)))}, tmp / "adapter_model.safetensors")
        Manifest(name=name, version=version, base_model=base.name, base_fingerprint=fingerprint(base), lora_rank=rank,
                 lora_alpha=2 * rank, target_modules=list(TARGETS), data_hash="sha256:synthetic", prompt_hash=PROMPT_HASH,
                 point_rule="median", steps=seed,
                 validation=ValidationScores(n=1, mean_error=100.0 + seed, rmsle=1.0, hit_rate=0.5)).write(tmp)
    return dest


def make_store(root: Path, name: str = "bench", versions: int = 3) -> tuple[Path, list[str]]:
    """(the base folder, the version names) in a store at `root`."""
    base = make_base(root)
    names = [f"20260101-0000{i:02d}-s{i + 1}" for i in range(versions)]
    for i, version in enumerate(names):
        if not (Path(root) / "adapters" / name / version).exists():
            make_adapter(root, base, name, version, seed=i + 1)
    return base, names
