"""The index manifest: the last file written into a version folder, and the proof it is whole.

A version `models/index/<version>/` holds ann.faiss (FAISS's own format), items.jsonl (title,
price and a hash of each item's text, one a line) and manifest.json, written last with the
sha256 and size of each file. A folder without a manifest is not a version.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.index.ann import AnnParams

MANIFEST = "manifest.json"
ANN_FILE = "ann.faiss"
ITEMS_FILE = "items.jsonl"
FORMAT = 1


class IndexFolderError(ValueError):
    """An index folder that cannot be used; the message says why and what to do."""


class DataFile(BaseModel):
    path: str
    sha256: str
    items: int = Field(ge=0)


class FileEntry(BaseModel):
    sha256: str
    bytes: int = Field(ge=0)


class IndexManifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: int = FORMAT
    version: str
    embedder: str  # a name in app.index.embedders.EMBEDDERS (or a test's own)
    dim: int = Field(ge=1)
    count: int = Field(ge=0)
    metric: str = "cosine"
    ann: AnnParams
    library: str  # e.g. "faiss-cpu 1.15.1"
    data: list[DataFile] = Field(default_factory=list)
    files: dict[str, FileEntry]
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    build_seconds: float | None = None
    command: str | None = None

    @classmethod
    def read(cls, folder: Path) -> IndexManifest:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise IndexFolderError(f"{folder} is not an index version: no {MANIFEST} (build one with `pricer index build`)")
        try:
            manifest = cls.model_validate_json(path.read_text())
        except (OSError, ValidationError) as e:
            raise IndexFolderError(f"{path} is not a valid index manifest: {e}") from None
        if manifest.format != FORMAT:
            raise IndexFolderError(f"{path}: index format {manifest.format}, this Pricer reads format {FORMAT}; rebuild it")
        return manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)


def check_files(folder: Path, manifest: IndexManifest) -> None:
    """Every file the manifest names is there with the recorded size and hash."""
    for name in (ANN_FILE, ITEMS_FILE):
        if name not in manifest.files:
            raise IndexFolderError(f"{folder}/{MANIFEST} does not list {name}; rebuild the index")
    for name, entry in manifest.files.items():
        path = Path(folder) / name
        if not path.is_file():
            raise IndexFolderError(f"index {folder} is missing {name}; rebuild it with `pricer index build`")
        if path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
            raise IndexFolderError(f"index {folder}: {name} does not match its manifest (changed or truncated); rebuild it")


def versions(root: Path) -> list[Path]:
    """Complete versions under `root` (folders with a manifest), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def find_built_from(root: Path, embedder: str, data_sha256) -> tuple[Path | None, list[str]]:
    """The newest complete version under `root` (or `root` itself) built with `embedder` from exactly
    the data files whose sha256 are `data_sha256` (any order), and a line per version looked at and
    passed over. Matching by content, not by folder name, lets the same data give a matching index on
    any machine (the ensemble's knn member, `pricer index build --skip-existing`)."""
    root = Path(root)
    candidates = [root] if (root / MANIFEST).is_file() else list(reversed(versions(root)))
    wanted = (embedder, sorted(data_sha256))
    passed = []
    for folder in candidates:
        try:
            manifest = IndexManifest.read(folder)
        except IndexFolderError as e:
            passed.append(f"{folder.name}: {e}")
            continue
        if (manifest.embedder, sorted(d.sha256 for d in manifest.data)) == wanted:
            return folder, passed
        passed.append(f"{folder.name}: embedder {manifest.embedder}, other data")
    return None, passed


def resolve(path: Path) -> Path:
    """A version folder as given, or the newest version under a root folder."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    found = versions(path)
    if not found:
        raise IndexFolderError(f"no index at {path}: no version folder with a {MANIFEST} (build one with `pricer index build`)")
    return found[-1]
