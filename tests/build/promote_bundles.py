"""Tiny real bundles for the promotion tests (tests/build/test_promote.py, test_active.py): skops members
fitted on synthetic items (conftest's `fitted`), a stack from app.ensemble.fit, written by write_bundle."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.ensemble.bundle import sha256_file, write_bundle
from app.ensemble.fit import fit_stacks

LEVEL, FOLDS, SEED = 0.8, 5, 0
NAME = "pricer-ensemble"
SENTINEL = 12345.0  # no member fitted on these items ever answers this


def make_bundle(store: Path, version: str, members: dict[str, str], fitted, val, external: dict | None = None):
    """A bundle under store/ensembles/pricer-ensemble/<version>: `members` {bundle name: fitted folder
    name}, `external` {name: (manifest row, answers)}; returns (folder, the members' answers)."""
    folders, fitted_answers = fitted
    answers = {name: fitted_answers[source] for name, source in members.items()}
    rows = [{"name": name} for name in members]
    for name, (row, prices) in (external or {}).items():
        answers[name] = prices
        rows.append({"name": name, **row})
    manifest = {"name": NAME, "version": version, "level": LEVEL, "folds": FOLDS, "seed": SEED, "members": rows}
    stack = fit_stacks(answers, [i.price for i in val], LEVEL, FOLDS, SEED)
    folder = write_bundle(store / "ensembles" / NAME / version, stack, manifest,
                          {name: folders[source] for name, source in members.items()})
    return folder, answers


def llm_ref(store: Path, content: str = '{"version": "v1"}\n') -> dict:
    """An external LLM member's row: an adapter version in the store, by ref and manifest sha256."""
    ref = store / "adapters" / "pricer-x" / "v1"
    ref.mkdir(parents=True, exist_ok=True)
    (ref / "manifest.json").write_text(content)
    return {"kind": "external", "ref": "adapters/pricer-x/v1", "file": "manifest.json",
            "sha256": sha256_file(ref / "manifest.json")}


def settings(store: Path) -> Settings:
    return Settings(models_dir=store)
