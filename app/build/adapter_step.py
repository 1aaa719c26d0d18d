"""The `adapter-<member>` stage (app.build.pipeline): an llm member's LoRA adapter trained in the build
from its recipe's `train` (a `pricer train` preset and TrainConfig options, run through app.training's
own API), exported as a version into the workspace's own store, adapter-store/adapters/<name>/<version>/.
Only a promoted build copies it into the model store, under the same ref (app.build.publish).

It reads data/train.jsonl only, never data/heldout.jsonl: those are the stacking rows, which the member
must answer unseen. When the run asks for validation scores (val_items, final_val_items), a seeded slice
of data/train.jsonl (the run's seed) of that size is held back from its training items and scored.

The base is the run's (the preset's, or options.base), resolved against the model store as `pricer
train` resolves it; it must be the base the service serves (checked before training, else the service
would refuse the adapter). Trainer checkpoints go to adapter-runs/<member>/<key>/, keyed by everything
that decides the run, so a killed stage resumes its run and a changed recipe starts a fresh one.
The exporter names a version by the time of its export and writes that time into its manifest
(app.training.export): a retrained adapter is a new version, and so gives a new bundle digest.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

from app.build.recipe import ADAPTER_STORE
from app.build.steps import DATA, INDEX, StepError, recipe_here, train_items
from app.model.item_files import write_items

RUNS = "adapter-runs"  # in the workspace: the training files and the trainer's checkpoints, per member


def validation_split(ws: Path, config, folder: Path) -> tuple[Path, Path | None]:
    """(training file, validation file or None): data/train.jsonl as it is when the run scores nothing,
    else without a seeded slice of the size the run scores, which becomes its validation file."""
    n = max(config.val_items, config.final_val_items or 0)
    if n == 0:
        return Path(ws) / DATA / "train.jsonl", None
    items = train_items(ws)
    if 2 * n > len(items):
        raise StepError(f"the run scores {n} validation items (val_items, final_val_items), more than half of the "
                        f"{len(items)} training items they are held back from: lower them in train.options")
    held = set(random.Random(config.seed).sample(range(len(items)), n))
    write_items(folder / "train.jsonl", [item for k, item in enumerate(items) if k not in held])
    write_items(folder / "val.jsonl", [items[k] for k in sorted(held)])
    return folder / "train.jsonl", folder / "val.jsonl"


def training_base(config, settings, member: str) -> str:
    """The run's base as a folder of the model store (or a hub id), checked against the served base."""
    from app.store.base import fingerprint, is_model_folder
    from app.training.run import resolve_paths

    _, base, _ = resolve_paths(config.model_copy(update={"store": Path(settings.models_dir)}), settings)
    served = settings.base_model_path()
    if is_model_folder(Path(base)) and is_model_folder(served) and fingerprint(Path(base)) != fingerprint(served):
        raise StepError(f"member {member!r}: the run trains on {base}, but the service serves {served} "
                        "(PRICER_BASE_MODEL), which would refuse the adapter: set train.options.base to the served base")
    return str(Path(base).resolve()) if Path(base).exists() else base


def adapter_step(ws: Path, name: str, settings) -> Path:
    """Train the member's adapter; returns its one version in <ws>/adapter-store/adapters/<name>/ (the
    final export: the earlier saves' versions are dropped, the trainer's checkpoints resume a run)."""
    from app.training.config import TrainConfig
    from app.training.data import data_hash
    from app.training.run import TrainingError, base_fingerprint, train

    ws = Path(ws).resolve()
    recipe = recipe_here(ws)
    member = recipe.members.get(name)
    if member is None or member.train is None:
        raise StepError(f"member {name!r} trains no adapter (no `train` in its recipe entry)")
    spec, runs = member.train, ws / RUNS / name
    config = spec.config()
    data, val = validation_split(ws, config, runs)
    config = TrainConfig(**(config.model_dump() | {"data": [data], "val": val, "name": spec.name, "store": ws / ADAPTER_STORE,
                                                   "base": training_base(config, settings, name)}))
    identity = {"config": config.model_dump(mode="json"), "data": data_hash([data] + ([val] if val else [])),
                "base": base_fingerprint(config.base)}
    work_dir = runs / hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    for other in (p for p in (runs.iterdir() if runs.is_dir() else []) if p.is_dir() and p != work_dir):
        shutil.rmtree(other)  # another run's checkpoints: the recipe or the data changed since
    config = config.model_copy(update={"work_dir": work_dir})
    if recipe.index is not None:  # comparables in the prompts come from the build's own index
        settings = settings.model_copy(update={"index_dir": ws / INDEX})
    command = f"pricer build: member {name}, preset {spec.preset}, options {json.dumps(spec.options, sort_keys=True)}"
    try:  # a run killed after its last save resumes with nothing left to export: then it is run afresh
        versions = train(config, settings, command=command) or train(config, settings, command=command, fresh=True)
    except (TrainingError, ValueError) as e:
        raise StepError(f"member {name!r}: {e}") from None
    final = versions[-1]
    for other in final.parent.iterdir():
        if other != final and other.is_dir():
            shutil.rmtree(other)
    return final
