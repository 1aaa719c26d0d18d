"""The prepared base models the default answer needs (`pricer model needed`; `make serve` prepares them).

The bundle is the one a replica would load now (app.pricing.local.ensemble_folder: the desired state's
version, else PRICER_ENSEMBLE_POLICY's choice; none with PRICER_ESTIMATOR=llm). It needs the served base
(PRICER_BASE_MODEL) always, and each saved member the base its estimator.json records (`base_model`:
llm-head and knowledge read hidden states of the base they were fitted on, found by that name in the
store); a knowledge member that records none reads PRICER_KNOWLEDGE_BASE. Pure file reading: no model,
no hash of a member's weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.ensemble.bundle import MANIFEST
from app.estimators.storage import SavedEstimatorError, read_meta
from app.pricing.local import ensemble_folder
from app.store.base import PACKAGED, is_model_folder

SERVED = "served base"  # what a base is needed for when the engine serves it


class NeededError(ValueError):
    """A store whose active bundle cannot be read; the message names the file."""


@dataclass
class NeededBase:
    name: str  # as PRICER_BASE_MODEL or a member's estimator.json writes it: a store name or a path
    path: Path
    needed_by: list[str] = field(default_factory=list)  # SERVED and/or member names

    @property
    def prepared(self) -> bool:
        return is_model_folder(self.path)

    @property
    def packaged(self) -> bool:
        """Whether `pricer model prepare <name>` can make it (a registry package ships it)."""
        return self.name in PACKAGED

    def as_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "prepared": self.prepared, "packaged": self.packaged,
                "needed_by": self.needed_by}


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NeededError(f"{path}: {e}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), list):
        raise NeededError(f"{path}: no list of members (not an ensemble bundle manifest)")
    return manifest


def member_bases(folder: Path, settings: Settings) -> list[tuple[str, str]]:
    """(member, base name) for each saved member of the bundle in `folder` that reads a base model."""
    out = []
    for row in _read_manifest(folder)["members"]:
        if not isinstance(row, dict) or row.get("kind") != "saved":
            continue  # external members: the LLM's adapter (on the served base), an index, an API
        name = str(row.get("name"))
        try:
            meta = read_meta(folder / str(row.get("path", f"members/{name}")))
        except SavedEstimatorError as e:
            raise NeededError(f"member {name!r}: {e}") from None
        base = meta.get("base_model")
        if not base and "knowledge" in (meta.get("name"), row.get("estimator")):
            base = settings.knowledge_base
        if base:
            out.append((name, str(base)))
    return out


def needed_bases(settings: Settings) -> tuple[str | None, list[NeededBase]]:
    """(name@version of the bundle read, or None: the LLM alone answers) and the bases it needs,
    the served base first, then in member order, each once."""
    folder = ensemble_folder(settings)
    label = None if folder is None else f"{folder.parent.name}@{folder.name}"
    bases: dict[str, NeededBase] = {}

    def need(name: str, by: str) -> None:
        if name not in bases:
            bases[name] = NeededBase(name, settings.model_copy(update={"base_model": name}).base_model_path())
        bases[name].needed_by.append(by)

    need(settings.base_model, SERVED)
    for member, base in member_bases(folder, settings) if folder is not None else []:
        need(base, member)
    return label, list(bases.values())
