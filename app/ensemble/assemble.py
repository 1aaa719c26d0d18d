"""Writing a fitted bundle from its members' answers on the stacking rows: the stacks (one per member
subset), the cross-validated table and the manifest. `pricer ensemble fit` and `pricer build`'s
stack step both end here, so a bundle is written one way."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from app.ensemble.bundle import new_version, write_bundle
from app.ensemble.fit import fit_stacks, report_table
from app.ensemble.combine import subset_key
from app.ensemble.members import READS_TRAIN
from app.ensemble.rows import StackRows
from app.model.items import Item


def file_facts(path: Path, items: int) -> dict:
    return {"path": str(path), "items": items, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


def assemble(dest_root: Path, answers: Mapping[str, Sequence[float]], rows: Sequence[tuple[dict, Path | None]],
             stacking: Sequence[Item], *, name: str, level: float, folds: int, seed: int,
             train: Sequence[dict], val: dict, version: str | None = None, extra: Mapping | None = None,
             stack_rows: StackRows | None = None) -> tuple[Path, dict]:
    """Fit the stacks on `answers` (member -> its answers on `stacking`, in the stack's order), write
    the bundle as dest_root/<version> (a new timestamp unless given) and return (folder, table).
    `rows`: each member's manifest row and its saved folder (None for an external member); `train`
    and `val`: the data facts recorded in the manifest; `extra`: more manifest keys (a build's recipe);
    `stack_rows`: the stacking rows' richness classes and groups (app.ensemble.rows), recorded in the manifest
    with the full member set's offsets per class ("richness")."""
    truths = [i.price for i in stacking]
    stack = fit_stacks(answers, truths, level, folds, seed, rows=stack_rows)
    table = report_table(answers, truths, level, folds, seed, rows=stack_rows)
    if stack_rows is not None:
        full = stack["subsets"][subset_key(answers)]
        extra = {**(extra or {}), "richness": {**stack_rows.settings(), "conformal": full.get("offsets_by_richness")}}
    version = version or new_version()
    manifest = {
        "name": name, "version": version, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "level": level, "folds": folds, "seed": seed, "members": [r for r, _ in rows],
        "data": {"train": list(train), "train_used_by": [r["name"] for r, _ in rows if r.get("fitted") in READS_TRAIN],
                 "val": val},
        "cross_validated": table, **(extra or {}),
    }
    saved = {r["name"]: folder for r, folder in rows if folder is not None}
    return write_bundle(Path(dest_root) / version, stack, manifest, saved), table
