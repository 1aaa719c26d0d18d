"""The adapter store on disk: `<adapters_dir>/<name>/<version>/`, scanned into AdapterVersion rows.

A folder counts as a version only once its manifest.json is there (training writes it last and
renames the folder into place). Hidden folders (training's temporary `.<version>.tmp-*`) are never
versions. Version names sort chronologically (`<UTC YYYYmmdd-HHMMSS>-s<step>`), so "latest" is the
greatest name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from app.adapters.manifest import MANIFEST, Manifest
from app.versions.folders import SAFE_NAME, folder_stamp, is_safe_name  # noqa: F401  (shared by every kind)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterVersion:
    """One version folder as found on disk. `manifest` is None when it could not be read, and
    `problem` then says why (such a version is rejected, never served)."""

    name: str
    version: str
    path: Path
    manifest: Manifest | None
    problem: str | None = None
    stamp: tuple = ()  # (file, size, mtime) of the folder's files: a rejected version is re-examined when it changes

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def served_error(self, point: str | None = None) -> float | None:
        """Validation mean error under the point rule `point` (the one the service answers with):
        the recorded score when the version was validated with that rule, else the same
        generations' score under it (`by_point`), else None (not scored as served). `point` None:
        the recorded score, whatever its rule."""
        if self.manifest is None or self.manifest.validation is None:
            return None
        scores = self.manifest.validation
        recorded = self.manifest.point_rule or str(getattr(scores, "decoding", "") or "").rpartition(":")[2] or None
        if point is None or recorded == point:
            return scores.mean_error
        other = (getattr(scores, "by_point", None) or {}).get(point)
        return float(other["mean_error"]) if isinstance(other, dict) and "mean_error" in other else None


def parse_pin(pin: str) -> tuple[str, str | None]:
    """"name" -> (name, None); "name@version" -> (name, version)."""
    name, sep, version = pin.partition("@")
    return name, (version if sep else None)


def version_folder(adapters_dir: Path, name: str, version: str) -> Path | None:
    """The folder `name/version` when it is a version, else None: unsafe names, no folder, or no
    manifest (half-written)."""
    path = Path(adapters_dir) / name / version
    if not (is_safe_name(name) and is_safe_name(version)) or not (path.is_dir() or path.is_symlink()):
        return None
    return path if (path / MANIFEST).exists() else None


def read_version(adapters_dir: Path, name: str, version: str) -> AdapterVersion | None:
    """The version folder `name/version`, or None when it is not (yet) a version."""
    path = version_folder(adapters_dir, name, version)
    if path is None:
        return None
    stamp = folder_stamp(path)
    try:
        manifest = Manifest.read(path)
    except (OSError, ValueError, ValidationError) as e:
        return AdapterVersion(name, version, path, None, f"unreadable manifest: {_short(e)}", stamp)
    problem = None
    if (manifest.name, manifest.version) != (name, version):
        problem = f"manifest says {manifest.name}@{manifest.version} but the folder is {name}/{version}"
    return AdapterVersion(name, version, path, manifest, problem, stamp)


def scan(adapters_dir: Path) -> list[AdapterVersion]:
    """Every version in the store, sorted by (name, version)."""
    adapters_dir = Path(adapters_dir)
    names = sorted(d for d in adapters_dir.iterdir() if d.is_dir() and not d.name.startswith(".")) if adapters_dir.is_dir() else []
    rows = (read_version(adapters_dir, d.name, v.name) for d in names for v in sorted(d.iterdir()) if not v.name.startswith("."))
    return [row for row in rows if row is not None]


def _short(error: Exception) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."
