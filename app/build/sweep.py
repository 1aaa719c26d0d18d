"""A sweep: the same recipe built once per combination of a few settings, one after another in one
workspace, each scored as a build is (nested cross-validation on the held-out rows). DVC's run cache
makes it cheap: a stage whose inputs a combination does not change (the index, the LLM's answers) runs
once for the whole sweep, and a combination seen before is restored, not recomputed.

    pricer build recipes/shipped.yaml --sweep data.train.0.limit=500,1000,2000 --sweep data.train.0.sample_seed=1,2

Rows go to <workspace>/sweep.jsonl: the settings, the training items, the stack's scores. Nothing is
published or promoted. `pricer build-curve` draws a learning curve from them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import yaml

from app.build.recipe import RecipeError
from app.runtime.atomic import atomic_write_text

SWEEP_FILE = "sweep.jsonl"


def grid(sweeps: list[str]) -> list[list[str]]:
    """`KEY=V1,V2` options -> every combination, as lists of `KEY=V` overrides (first key slowest)."""
    axes = []
    for item in sweeps:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise RecipeError(f"--sweep takes KEY=V1,V2,... (e.g. data.train.0.limit=500,1000), got {item!r}")
        axes.append([f"{key}={v.strip()}" for v in values.split(",") if v.strip()])
    return [list(combo) for combo in itertools.product(*axes)]


def row(ws: Path, overrides: list[str], digest: str) -> dict:
    """One sweep row from the build just finished in `ws`."""
    metrics = json.loads((Path(ws) / "evaluation" / "metrics.json").read_text())
    facts = json.loads((Path(ws) / "data" / "facts.json").read_text())
    settings = {key: yaml.safe_load(value) for key, _, value in (o.partition("=") for o in overrides)}
    return {"settings": settings, "train_items": facts["train"], "heldout_items": facts["heldout"], "digest": digest,
            "stack": metrics["stack"], "members": {k: v["mean_error"] for k, v in metrics["members"].items()}}


def append(ws: Path, new: dict) -> Path:
    """Add a row to the workspace's sweep file (a row for the same settings is replaced)."""
    path = Path(ws) / SWEEP_FILE
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    rows = [r for r in rows if r["settings"] != new["settings"]] + [new]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return path
