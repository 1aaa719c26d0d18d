"""Trainer checkpoints become adapter versions: models/adapters/<name>/<version>/.

A version is built in a hidden folder inside the adapter's folder (app.runtime.atomic: scanners skip
names starting with "."), the manifest is written last, and the folder is renamed into place, so a
reader sees either no version or a whole one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from app.adapters.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, Manifest, ValidationScores
from app.runtime.atomic import hidden_folder, publish


def version_name(step: int, now: datetime | None = None) -> str:
    """`<UTC YYYYmmdd-HHMMSS>-s<step>`: sorts chronologically (the step is zero-padded so that
    two saves within one second still sort by step)."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-s{step:06d}"


def export_version(model, adapters_dir: Path, name: str, step: int, manifest_fields: dict,
                   validate: Callable[[Path], ValidationScores | None] | None = None) -> Path:
    """Save a peft model's adapter as a new version of `name`; returns the version folder.

    `validate(tmp_folder)` runs after the weights are written and before the manifest is, so the
    manifest carries the scores of exactly these weights."""
    adapter_root = Path(adapters_dir) / name
    created = datetime.now(timezone.utc)
    version = version_name(step, created)
    tmp = hidden_folder(adapter_root / version)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's model card template: noise in the store
        for required in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            if not (tmp / required).is_file():
                raise RuntimeError(f"adapter export wrote no {required} in {tmp}")
        for file in tmp.iterdir():
            file.chmod(0o644)  # safetensors are saved 0600; the service may run as another user
        validation = validate(tmp) if validate is not None else None
        while (adapter_root / version).exists():  # same second, same step (a resumed run): next second
            time.sleep(1)
            created = datetime.now(timezone.utc)
            version = version_name(step, created)
        manifest = Manifest(name=name, version=version, steps=step, validation=validation, created_at=created, **manifest_fields)
        manifest.write(tmp)
        publish(tmp, adapter_root / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return adapter_root / version
