"""Running `pricer build` in tests: a recipe file for tiny data, the command as a subprocess (DVC runs
its own processes), its JSON summary and the stages DVC ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def recipe_file(folder: Path, members: dict, name: str = "tiny", **extra) -> Path:
    data = {"train": [{"path": str(folder / "train.jsonl")}], "heldout": {"path": str(folder / "heldout.jsonl")}}
    path = folder / f"{name}-{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "data": data, "members": members, **extra}))
    return path


def build(recipe: Path, ws: Path, store: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "app.cli", "build", str(recipe), "--workspace", str(ws), "--models-dir",
               str(store), "--json", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def summary(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def ran(done: subprocess.CompletedProcess) -> set[str]:
    """The stages DVC ran in this build (its own output)."""
    return {line.split("'")[1] for line in done.stdout.splitlines() if line.startswith("Running stage '")}
