"""The persisted active adapter version, so a restart serves what was served (not simply the
newest on disk). One small JSON file in the model store, written atomically."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from app.store.atomic import atomic_write_text

log = logging.getLogger(__name__)

STATE_FILE = ".pricer-state.json"


def state_path(models_dir: Path) -> Path:
    return Path(models_dir) / STATE_FILE


def load_active(models_dir: Path) -> tuple[str, str] | None | bool:
    """The persisted active (name, version); None when the base model was active; False when
    nothing was persisted (or the file is unreadable, which is logged)."""
    path = state_path(models_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable adapter state %s: %s", path, e)
        return False
    active = data.get("active") if isinstance(data, dict) else None
    if active is None:
        return None if isinstance(data, dict) and "active" in data else False
    if isinstance(active, dict) and isinstance(active.get("name"), str) and isinstance(active.get("version"), str):
        return active["name"], active["version"]
    log.warning("ignoring malformed adapter state %s", path)
    return False


def save_active(models_dir: Path, active: tuple[str, str] | None) -> None:
    payload = {
        "active": None if active is None else {"name": active[0], "version": active[1]},
        "updated_at": datetime.now(timezone.utc).isoformat(),
    }
    atomic_write_text(state_path(models_dir), json.dumps(payload, indent=2) + "\n")
