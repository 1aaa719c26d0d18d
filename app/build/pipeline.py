"""The recipe as a DVC pipeline: a workspace folder with params.yaml (the recipe, paths made absolute),
a dvc.yaml rendered from it, and `dvc repro`. DVC caches each stage by the content hash of its
inputs, parameters and command, reruns only what a change touches, and records it all in dvc.lock;
we write no DAG runner of our own.

    data            the recipe's files -> data/train.jsonl, data/heldout.jsonl, data/errors.jsonl
    index           data -> index/ (reused from the store when one was built from the same files)
    adapter-<name>  data/train.jsonl -> adapter-store/adapters/<adapter>/ (an llm member's `train`)
    member-<name>   data (+ index, + adapter) -> members/<name>/ (saved estimators), answers/<name>.jsonl
                    (+ answers/<name>.titles.jsonl: the held-out items as titles alone, stack.title_rows)
    stack           answers + members -> bundle/ (the stack fitted on the held-out rows)
    evaluate        bundle -> evaluation/ (metrics.json, out-of-fold answers, charts)

The workspace is a DVC project without git (`dvc init --no-scm`) under builds/<recipe>/, so builds
never touch the repository's index; its cache (.dvc/cache) lets a changed setting that is changed
back restore outputs instead of recomputing them.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from app.build.recipe import PARAMS_FILE as PARAMS
from app.build.recipe import TRAIN, Recipe
from app.runtime.atomic import atomic_write_text

DVC_FILE = "dvc.yaml"
TRAIN_FILE, HELDOUT = "data/train.jsonl", "data/heldout.jsonl"  # the data stage's two files the others read
HEADER = "# Written by `pricer build` from the recipe (app/build/pipeline.py); edit the recipe, not this file.\n"


class PipelineError(RuntimeError):
    """DVC could not run the pipeline; the message carries its last lines."""


def _step(*args: str) -> str:
    """The command a stage runs: this interpreter, so the workspace uses the same installation."""
    return shlex.join([sys.executable, "-m", "app.cli", "build-step", *args])


def titles_answers(member: str) -> str:
    """A member's answers on the held-out items as titles alone (Item.title_only()), in their order."""
    return f"answers/{member}.titles.jsonl"


def stages(recipe: Recipe) -> dict:
    """dvc.yaml's stages for `recipe` (deterministic: the same recipe renders the same file)."""
    out: dict[str, dict] = {
        "data": {"cmd": _step("data"), "deps": recipe.files_for_data(), "params": ["data"],
                 "outs": ["data"]},
    }
    if recipe.index is not None:
        extra = [p for p in recipe.index.data if p != TRAIN]
        out["index"] = {"cmd": _step("index"), "deps": ([TRAIN_FILE] if TRAIN in recipe.index.data else []) + extra,
                        "params": ["index"], "outs": ["index"]}
    trained = []  # the adapters trained here (their stage's outputs), which the stack's rows name too
    for name, member in recipe.members.items():
        if member.train is not None:  # never data/heldout.jsonl: those are the stacking rows
            reads = [TRAIN_FILE] + (["index"] if member.train.config().comparables else [])
            out[f"adapter-{name}"] = {"cmd": _step("adapter", name), "deps": reads,
                                      "params": [f"members.{name}.train"], "outs": [member.train.folder]}
            trained.append(member.train.folder)
        learns = member.estimator not in ("knn", "llm")  # those two answer from the index and the adapter
        deps = [HELDOUT] + ([TRAIN_FILE] if learns else []) + (["index"] if not learns and recipe.index else [])
        deps += [member.adapter] if member.adapter else []
        deps += [member.train.folder] if member.train else []
        outs = [f"answers/{name}.jsonl", f"members/{name}"] + ([titles_answers(name)] if recipe.stack.title_rows else [])
        params = [f"members.{name}", "stack.seed"] + (["stack.title_rows"] if recipe.stack.title_rows else [])
        out[f"member-{name}"] = {"cmd": _step("member", name), "deps": deps, "params": params, "outs": outs}
    member_outs = [o for name in recipe.members for o in out[f"member-{name}"]["outs"]] + trained
    out["stack"] = {"cmd": _step("stack"), "deps": [TRAIN_FILE, HELDOUT] + (["index"] if recipe.index else []) + member_outs,
                    "params": ["name", "stack", "members"], "outs": ["bundle"]}
    answers = [a for n in recipe.members for a in [f"answers/{n}.jsonl"] + ([titles_answers(n)] if recipe.stack.title_rows else [])]
    out["evaluate"] = {"cmd": _step("evaluate"), "deps": ["bundle", HELDOUT] + answers,
                       "outs": ["evaluation/oof.jsonl", "evaluation/charts"],
                       "metrics": [{"evaluation/metrics.json": {"cache": False}}]}
    return {"stages": out}


def prepare(recipe: Recipe, workspace: Path) -> Path:
    """Create or refresh the workspace: `dvc init --no-scm` once, then params.yaml and dvc.yaml
    (rewritten only when their text changes, so DVC sees no change when there is none)."""
    import importlib.util

    if importlib.util.find_spec("dvc") is None:  # app.cli turns this into "install the `build` extra", exit 2
        raise ModuleNotFoundError("No module named 'dvc'", name="dvc")
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    if not (workspace / ".dvc").is_dir():
        run_dvc(workspace, "init", "--no-scm", "--quiet")
        run_dvc(workspace, "config", "core.autostage", "false", "--quiet")
    for name, text in ((PARAMS, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)),
                       (DVC_FILE, HEADER + yaml.safe_dump(stages(recipe), sort_keys=False))):
        target = workspace / name
        if not target.is_file() or target.read_text() != text:
            atomic_write_text(target, text)
    clear_dead_locks(workspace)
    return workspace


def store_env(settings) -> dict[str, str]:
    """The store's folders and the vector cache as absolute PRICER_* variables: the stages run in
    the workspace, where relative paths (models/, builds/vectors.sqlite) would point elsewhere."""
    env = {"PRICER_MODELS_DIR": str(Path(settings.models_dir).resolve())}
    for key in ("index_dir", "ensemble_dir", "vector_cache"):
        if getattr(settings, key, None):
            env[f"PRICER_{key.upper()}"] = str(Path(getattr(settings, key)).resolve())
    return env


def run_dvc(workspace: Path, *args: str, capture: bool = True, env: dict[str, str] | None = None) -> str:
    """`dvc ARGS` in the workspace (its own process: a killed build leaves DVC's lock to DVC)."""
    import os

    command = [sys.executable, "-m", "dvc", *args]
    done = subprocess.run(command, cwd=workspace, text=True, capture_output=capture, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        tail = "\n".join(((done.stderr or "") + (done.stdout or "")).strip().splitlines()[-15:])
        raise PipelineError(f"`dvc {' '.join(args)}` failed in {workspace} (exit {done.returncode})" + (f":\n{tail}" if tail else ""))
    return done.stdout or ""


def stale(workspace: Path) -> list[str]:
    """Stages `dvc repro` would run (dvc status), empty when everything is up to date."""
    text = run_dvc(workspace, "status", "--json")
    import json

    return [key.split(":")[-1] for key in json.loads(text or "{}")]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def clear_dead_locks(workspace: Path) -> list[int]:
    """Drop the stage locks of DVC processes that are gone. DVC clears a killed process's locks itself,
    but it counts a zombie (a killed build whose parent has not reaped it yet) as alive and refuses to
    run; a build killed with -9 must resume. Returns the pids dropped."""
    import json

    path = Path(workspace) / ".dvc" / "tmp" / "rwlock"
    try:
        locks = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    dead: set[int] = set()

    def keep(entry: dict) -> bool:
        if _alive(int(entry.get("pid", 0))):
            return True
        dead.add(int(entry.get("pid", 0)))
        return False

    read = {p: [e for e in entries if keep(e)] for p, entries in locks.get("read", {}).items()}
    write = {p: e for p, e in locks.get("write", {}).items() if keep(e)}
    if dead:
        atomic_write_text(path, json.dumps({"read": {p: e for p, e in read.items() if e}, "write": write}))
    return sorted(dead)


def repro(workspace: Path, settings, force: bool = False, rerun: tuple[str, ...] = ()) -> None:
    """Run what is out of date, with DVC's own output (stage by stage) on the terminal; then each stage
    in `rerun` again, cached or not, and what follows it (its outputs changed)."""
    env = store_env(settings)
    run_dvc(workspace, "repro", *(["--force"] if force else []), capture=False, env=env)
    for stage in rerun:
        run_dvc(workspace, "repro", "--force", "--single-item", stage, capture=False, env=env)
    if rerun:
        run_dvc(workspace, "repro", capture=False, env=env)
