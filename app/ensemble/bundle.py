"""The versioned ensemble bundle: models/ensembles/<name>/<version>/

    manifest.json        written last: members (saved or external, with file hashes), stack file hash,
                         level, data hashes, cross-validated scores
    stack.json           member order, level, one stack (weights + conformal offsets) per member subset
    members/<member>/    saved estimator folders (estimator.json + skops/safetensors; no pickle)

Built in a hidden folder beside its final place and renamed into place. `Bundle.load` refuses a
bundle whose members are missing or do not match the hashes it was fitted with, naming the member.
An external member (the LLM's adapter, a retrieval index) is a folder under the model store,
recorded by its path relative to the store and the sha256 of its manifest.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.ensemble.combine import Ensemble
from app.ensemble.rows import FEATURES
from app.index.manifest import sha256_file  # one file-hash helper (no faiss import)
from app.runtime.atomic import atomic_write_text, building

MANIFEST = "manifest.json"
STACK = "stack.json"
MEMBERS = "members"
FORMAT = 1


class BundleError(ValueError):
    """A bundle that cannot be served; the message names the file or member and why."""


def folder_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def external_fingerprint(folder: Path) -> tuple[str, str]:
    """(file, sha256) that identifies an external member's folder: its manifest (or estimator.json)."""
    for name in ("manifest.json", "estimator.json"):
        if (folder / name).is_file():
            return name, sha256_file(folder / name)
    raise BundleError(f"{folder}: no manifest.json or estimator.json to fingerprint")


# Manifest keys that say when, where and how long, not what: left out of a bundle's content digest.
VOLATILE = frozenset({"version", "created_at", "fit_seconds", "path", "build", "promotion"})


def content_digest(folder: Path) -> str:
    """What a bundle computes, as one sha256: its stack and saved members' files and its manifest
    without the VOLATILE keys. Two builds of the same recipe on the same data have the same digest."""
    import hashlib

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        return [strip(v) for v in value] if isinstance(value, list) else value

    folder = Path(folder)
    digest = hashlib.sha256(json.dumps(strip(json.loads((folder / MANIFEST).read_text())), sort_keys=True).encode())
    for name, sha in folder_hashes(folder).items():
        if name == STACK or name.startswith(MEMBERS + "/"):  # not files added beside them (oof.jsonl)
            digest.update(f"{name}\0{sha}\n".encode())
    return digest.hexdigest()


def new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def write_bundle(dest: Path, stack: dict, manifest: dict, saved_members: dict[str, Path]) -> Path:
    """Copy the saved members' folders in, write stack.json, then manifest.json, then rename."""
    dest = Path(dest)
    if dest.exists():
        raise BundleError(f"{dest} exists: bundles are never overwritten")
    with building(dest) as tmp:
        rows = {row["name"]: row for row in manifest["members"]}
        for name, folder in saved_members.items():
            target = tmp / MEMBERS / name
            shutil.copytree(folder, target)
            rows[name].update(kind="saved", path=f"{MEMBERS}/{name}", files=folder_hashes(target))
        stack_text = json.dumps(stack, indent=2) + "\n"
        atomic_write_text(tmp / STACK, stack_text)
        manifest = {**manifest, "format": FORMAT, "stack": {"file": STACK, "sha256": sha256_file(tmp / STACK)}}
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return dest


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict
    ensemble: Ensemble
    unavailable: Mapping[str, str] = field(default_factory=dict)  # strict=False: member -> why it failed its check

    @property
    def label(self) -> str:
        return f"{self.manifest['name']}@{self.manifest['version']}"

    def member(self, name: str) -> dict:
        for row in self.manifest["members"]:
            if row["name"] == name:
                return row
        raise KeyError(name)

    def member_folder(self, name: str, models_dir: Path | None = None) -> Path:
        """A saved member's folder inside the bundle, or an external one under the model store."""
        row = self.member(name)
        if row["kind"] == "saved":
            return self.path / row["path"]
        if models_dir is None:
            raise BundleError(f"member {name!r} lives in the model store: pass models_dir")
        return Path(models_dir) / row["ref"]

    @classmethod
    def load(cls, directory: Path | str, models_dir: Path | str | None = None, strict: bool = True) -> Bundle:
        """Check every member and the stack against the manifest; refuse with a clear error.
        External members are checked only when `models_dir` is given (the service gives it).
        strict=False (the service): a member that fails its check is recorded in `unavailable`
        (member -> the reason) instead of refusing the bundle; the stack is always checked."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except FileNotFoundError:
            raise BundleError(f"{directory}: no {MANIFEST} (not an ensemble bundle, or not finished)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise BundleError(f"{directory / MANIFEST}: {e}") from None
        unavailable = {}
        for row in manifest.get("members", []):
            try:
                _check_member(directory, row, Path(models_dir) if models_dir else None)
            except BundleError as e:
                if strict:
                    raise
                unavailable[row["name"]] = str(e)
        stack_file = directory / manifest["stack"]["file"]
        if not stack_file.is_file() or sha256_file(stack_file) != manifest["stack"]["sha256"]:
            raise BundleError(f"{stack_file}: missing or not the stack this bundle was fitted with")
        stack = json.loads(stack_file.read_text())
        names = [row["name"] for row in manifest["members"]]
        if stack["members"] != names:
            raise BundleError(f"{stack_file}: members {stack['members']} but the manifest lists {names}")
        unknown = sorted({f.get("richness", "none") for f in stack["subsets"].values()} - set(FEATURES))
        if unknown:
            raise BundleError(f"{stack_file}: richness columns {unknown} this version cannot build (one of {', '.join(FEATURES)})")
        return cls(directory, manifest, Ensemble(tuple(names), stack["subsets"], float(stack["level"])), unavailable)


def _check_member(directory: Path, row: dict, models_dir: Path | None) -> None:
    name = row["name"]
    if row["kind"] == "saved":
        folder = directory / row["path"]
        if not folder.is_dir():
            raise BundleError(f"member {name!r}: its folder {folder} is missing")
        for rel, digest in row["files"].items():
            path = folder / rel
            if not path.is_file():
                raise BundleError(f"member {name!r}: {path} is missing")
            if sha256_file(path) != digest:
                raise BundleError(f"member {name!r}: {path} does not match the bundle (sha256 differs)")
    elif row["kind"] == "external":
        if models_dir is None or isinstance(row.get("index"), dict) or isinstance(row.get("endpoint"), dict):
            return  # an index found by content, or an API configured, at serving time (app/ensemble/external.py)
        folder = models_dir / row["ref"]
        path = folder / row["file"]
        if not path.is_file():
            raise BundleError(f"member {name!r}: {path} is missing from the model store ({row['ref']})")
        if sha256_file(path) != row["sha256"]:
            raise BundleError(f"member {name!r}: {path} is not the version the ensemble was fitted with")
    else:
        raise BundleError(f"member {name!r}: unknown kind {row['kind']!r}")


def find_bundles(ensembles_dir: Path | str, name: str) -> list[Path]:
    """Finished versions of an ensemble (manifest present), oldest first; hidden build folders skipped."""
    root = Path(ensembles_dir) / name
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())
