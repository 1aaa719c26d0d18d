"""Putting a built bundle into the model store: a new version folder (built beside it, renamed into
place) carrying its content digest, the recipe it came from and the promotion record; its index
installed where the service looks for it; the adapters it trained installed under the refs its
manifest names; never the same content twice."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from app.ensemble.bundle import MANIFEST, content_digest, find_bundles, new_version
from app.runtime.atomic import atomic_write_text, building


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def digest_of(folder: Path) -> str:
    """A bundle's content digest: the one its build recorded, else computed (bundles fitted by hand)."""
    return (_manifest(folder).get("build") or {}).get("digest") or content_digest(folder)


def published_as(store: Path, name: str, digest: str) -> Path | None:
    """The store's version with this content, newest first."""
    return next((f for f in reversed(find_bundles(Path(store) / "ensembles", name)) if digest_of(f) == digest), None)


def publish(built: Path, store: Path, name: str, build: dict, extra: dict[str, Path]) -> Path:
    """Copy the workspace's bundle into models/ensembles/<name>/<new version>/ with `build` (digest,
    recipe) in its manifest and the `extra` files beside it (name -> source: the out-of-fold answers),
    all before the folder is renamed into place; the members' and stack's hashes are unchanged."""
    version = new_version()
    dest = Path(store) / "ensembles" / name / version
    while dest.exists():  # two publishes in one second
        dest = dest.with_name(dest.name + "-1")
    with building(dest) as tmp:
        shutil.copytree(built, tmp, dirs_exist_ok=True)
        manifest = _manifest(tmp) | {"version": dest.name, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                     "build": build}
        data = manifest.get("data") or {}
        for facts in [*(data.get("train") or []), data.get("val") or {}]:
            if facts.get("path"):  # as the repository sees them, not as this machine's absolute paths
                facts["path"] = os.path.relpath(facts["path"])
        for file_name, source in extra.items():
            shutil.copyfile(source, tmp / file_name)
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return dest


def install_index(ws_index: Path, settings, embedder: str, data_sha256: list[str]) -> Path | None:
    """The build's index under the store's index root, unless one built from the same files is there
    (the knn member and the comparables find it by content). Returns the folder installed, or None."""
    from app.index.manifest import find_built_from
    from app.index.service import index_root

    root = index_root(settings)
    found, _ = find_built_from(root, embedder, data_sha256)
    if found is not None:
        return None
    from app.index.manifest import IndexManifest

    target = root / IndexManifest.read(ws_index).version
    with building(target) as tmp:
        shutil.copytree(ws_index, tmp, dirs_exist_ok=True)
    return target


def install_adapter(version: Path, ws_store: Path, store: Path) -> Path | None:
    """A version the build trained (<ws_store>/adapters/<name>/<version>) copied to the same ref in the model
    store, where the bundle's llm row finds it. None when it is there already (the same manifest sha256); a
    different version under that ref is refused, never replaced (a replica may be serving it)."""
    from app.adapters.manifest import MANIFEST as ADAPTER_MANIFEST
    from app.index.manifest import sha256_file

    version = Path(version).resolve()
    dest = Path(store) / version.relative_to(Path(ws_store).resolve())
    if dest.exists():
        mine, theirs = version / ADAPTER_MANIFEST, dest / ADAPTER_MANIFEST
        if theirs.is_file() and sha256_file(theirs) == sha256_file(mine):
            return None
        raise FileExistsError(f"{dest} exists and is not the adapter this build trained ({version}): not replaced")
    with building(dest) as tmp:
        shutil.copytree(version, tmp, dirs_exist_ok=True)
    return dest
