"""The import-linter contracts in pyproject.toml ([tool.importlinter]): layers only point down, the
web framework stays in the HTTP layer, no circles between sibling modules (imports inside functions
count). They hold on this tree, and each one breaks on a copy of it with one deliberate bad import,
so a contract that could never fail would show here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's `app`, not the installed one
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "app", copy / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_contracts_hold_on_this_tree():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    # the pricing core reaching up into the HTTP layer (what pricing/text.py once did)
    ("app/pricing/text.py", "from app.api import schemas", "Layers only point down"),
    # inside a function counts too
    ("app/model/spec.py", "def _up():\n    from app.ensemble import service", "Layers only point down"),
    ("app/ensemble/runner.py", "import fastapi", "web framework"),
    # two siblings importing each other
    ("app/model/prices.py", "def _loop():\n    from app.model import decoding", "No circles"),
])
def test_a_deliberate_bad_import_breaks_its_contract(tree, module, line, contract):
    target = tree / module
    original = target.read_text()
    target.write_text(original + "\n\n" + line + "\n")
    try:
        result = lint(tree)
    finally:
        target.write_text(original)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(contract in row for row in broken), result.stdout
