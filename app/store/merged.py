"""Adapters folded into their base: the one merge (transformers loads the base, app/store/lora_merge.py
folds the LoRA pairs in with torch alone, no peft) that `pricer merge` (app/training/merge.py) and the
merged engine (app/engine/merged.py) share, and the cache of merged folders the engine keeps under
the store, `<models_dir>/merged/<name>/<version>/`.

A merged folder is a plain HF model (config.json, safetensors) built in a hidden folder and renamed
into place (app.runtime.atomic), with `pricer-source.json` saying what it was made from: the
adapter's and the base's fingerprints and the dtype. The cache reuses a folder only when all three
match, so an adapter version rewritten in place, or another base, is merged again.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.runtime.atomic import atomic_write_text, building
from app.store.base import files_digest, fingerprint, is_model_folder

SOURCE_FILE = "pricer-source.json"
ADAPTER_FILES = ("adapter_config.json",)


def merged_root(models_dir: Path | str) -> Path:
    return Path(models_dir) / "merged"


def merged_folder(models_dir: Path | str, name: str, version: str) -> Path:
    """Where the engine keeps adapter `name@version` merged into the served base."""
    return merged_root(models_dir) / name / version


def adapter_fingerprint(adapter: Path | str) -> str:
    """sha256 over the adapter's config and weights (every *.safetensors), in name order."""
    adapter = Path(adapter)
    return files_digest([adapter / n for n in ADAPTER_FILES] + sorted(adapter.glob("*.safetensors")))


def merge_into(base: Path | str, adapter: Path | str, dest: Path | str, dtype: str = "bfloat16",
               source: dict | None = None, tokenizer: bool = True, replace: bool = True) -> Path:
    """Load `base` in `dtype`, fold the LoRA `adapter` into its weights and write the result to
    `dest` atomically (with the base's tokenizer when `tokenizer`; `source` as pricer-source.json).
    Raises a ValueError naming the file for an adapter that cannot be merged (wrong shapes, a
    corrupt or missing file, a LoRA feature the merge does not do; app.store.lora_merge), and
    whatever transformers raises for the base: callers say what it means to them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.store.lora_merge import merge_lora, read_lora

    base, adapter = Path(base), Path(adapter)
    pairs = read_lora(adapter)  # an adapter that cannot be merged is refused before the base is loaded
    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
    merge_lora(model, adapter, pairs)
    with building(Path(dest), replace=replace) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer:
            AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
        atomic_write_text(tmp / SOURCE_FILE, json.dumps(source or {}, indent=2))
    return Path(dest)


def source_key(base: Path | str, adapter: Path | str, dtype: str) -> dict:
    """What a cached merged folder must have been made from to be reused."""
    return {"adapter_fingerprint": adapter_fingerprint(adapter), "base_fingerprint": fingerprint(Path(base)),
            "dtype": dtype}


def read_source(folder: Path | str) -> dict | None:
    try:
        value = json.loads((Path(folder) / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def cached_merge(base: Path | str, adapter: Path | str, dest: Path | str, dtype: str = "bfloat16") -> tuple[Path, bool]:
    """`dest` holding `adapter` merged into `base` in `dtype`: reused when its recorded source
    matches (returns (dest, False)), else merged anew and replaced atomically ((dest, True))."""
    dest = Path(dest)
    key = source_key(base, adapter, dtype)
    recorded = read_source(dest)
    if recorded is not None and is_model_folder(dest) and all(recorded.get(k) == v for k, v in key.items()):
        return dest, False
    source = {"merged_from": str(adapter), "base": str(base), **key}
    return merge_into(base, adapter, dest, dtype, source=source, tokenizer=False), True
