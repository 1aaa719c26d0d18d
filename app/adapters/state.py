"""The adapter part of the desired state (app.versions.desired), for callers that only care which
adapter version is chosen: what a restart serves, and what every replica serves."""

from __future__ import annotations

from pathlib import Path

from app.versions import desired
from app.versions.desired import STATE_FILE, state_path  # noqa: F401  (the file's name, for callers)


def load_active(models_dir: Path) -> tuple[str, str] | None | bool:
    """The chosen (name, version); None when the base model was chosen; False when nothing was
    chosen (or the file is unreadable, which is logged)."""
    state = desired.read(models_dir)
    if not state.adapter_chosen:
        return False
    return state.adapter


def save_active(models_dir: Path, active: tuple[str, str] | None, by: str | None = None) -> int:
    """Choose `active` for every replica (the next generation); returns the generation written."""
    return desired.update(models_dir, adapter=active, by=by).generation
