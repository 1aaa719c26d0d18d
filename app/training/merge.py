"""`pricer merge`: an adapter folded into its base, written as a plain HF model under base/ (the
merge itself, shared with the merged engine, is app.store.merged.merge_into: torch and transformers,
no peft, so it runs in the lean serve install too)."""

from __future__ import annotations

from pathlib import Path

from app.adapters.manifest import Manifest
from app.config import Settings


class MergeError(RuntimeError):
    """An adapter that cannot be merged as asked; the message says why."""


def merge(adapter: Path, settings: Settings, name: str | None = None, base: str | None = None,
          store: Path | None = None, force: bool = False, dtype: str = "bfloat16") -> Path:
    """Merge `adapter` into its base in `dtype` (a QLoRA adapter too: its base is loaded
    unquantized, which is the dequantized model) and write `<store>/base/<name>/` atomically."""
    from app.store.base import fingerprint, is_model_folder
    from app.store.merged import merge_into

    adapter = Path(adapter)
    try:
        manifest = Manifest.read(adapter)
    except FileNotFoundError:
        raise MergeError(f"{adapter} is not an adapter version (no manifest.json)") from None
    store = Path(store) if store else settings.models_dir
    base_settings = settings.model_copy(update={"models_dir": store, "base_model": base or manifest.base_model})
    base_path = base_settings.base_model_path()
    if not is_model_folder(base_path):
        raise MergeError(f"base {base_settings.base_model!r} not found at {base_path}; pass --base")
    if fingerprint(base_path) != manifest.base_fingerprint:
        raise MergeError(f"{adapter} was trained on another base than {base_path} (fingerprints differ)")
    name = name or f"{manifest.name}-{manifest.version}-merged"
    dest = store / "base" / name
    if dest.exists() and not force:
        raise MergeError(f"{dest} exists; pass --force to replace it")

    source = {"merged_from": str(adapter), "adapter": f"{manifest.name}@{manifest.version}",
              "base": str(base_path), "base_fingerprint": manifest.base_fingerprint, "qlora": manifest.qlora}
    return merge_into(base_path, adapter, dest, dtype, source=source)
