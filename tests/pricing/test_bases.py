"""`pricer model needed`: the bases the default answer needs, read from the bundle a replica would serve
(a temporary store with fake manifests and estimator.json files: no model is loaded)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.store.base import PACKAGED
from tests.deploy.tools import ROOT

QWEN = "qwen2.5-coder-1.5b"
SHIPPED_LIKE = {"details-gbm": {"name": "details-gbm"},
                "llm-head": {"name": "llm-head", "base_model": "smollm2-135m", "depth": 16}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("BASE_MODEL", "KNOWLEDGE_BASE", "ENSEMBLE_DIR", "ENSEMBLE_POLICY", "ESTIMATOR", "MODELS_DIR"):
        monkeypatch.delenv(f"PRICER_{name}", raising=False)


def bundle(store, version: str, members: dict[str, dict], external=("knn", "llm")):
    """A bundle version with saved members (name -> estimator.json) and external ones, as the manifest lists them."""
    folder = store / "ensembles" / "pricer-ensemble" / version
    rows = []
    for name, meta in members.items():
        (folder / "members" / name).mkdir(parents=True)
        (folder / "members" / name / "estimator.json").write_text(json.dumps(meta))
        rows.append({"name": name, "estimator": meta["name"], "kind": "saved", "path": f"members/{name}", "files": {}})
    rows += [{"name": name, "kind": "external", "ref": f"adapters/x/{name}"} for name in external]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"name": "pricer-ensemble", "version": version, "members": rows}))
    return folder


def prepared(store, name: str):
    folder = store / "base" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")


def needed(store, *args, **env):
    env = {"PRICER_MODELS_DIR": str(store), **env}
    return CliRunner().invoke(cli, ["model", "needed", *args], env=env)


def lines(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_the_served_base_alone_without_a_knowledge_member(tmp_path):
    bundle(tmp_path, "20260101-000000", SHIPPED_LIKE)
    assert lines(needed(tmp_path)) == ["smollm2-135m"]  # llm-head's recorded base is the served one: once


def test_a_knowledge_member_adds_the_base_its_estimator_json_records(tmp_path):
    bundle(tmp_path, "20260101-000000", {**SHIPPED_LIKE, "knowledge": {"name": "knowledge", "base_model": QWEN}})
    assert lines(needed(tmp_path)) == ["smollm2-135m", QWEN]
    out = json.loads(needed(tmp_path, "--json").stdout)
    assert out["bundle"] == "pricer-ensemble@20260101-000000"
    assert [(b["name"], b["needed_by"], b["prepared"], b["packaged"]) for b in out["bases"]] == [
        ("smollm2-135m", ["served base", "llm-head"], False, True), (QWEN, ["knowledge"], False, True)]


def test_a_knowledge_member_that_records_no_base_reads_pricer_knowledge_base(tmp_path):
    bundle(tmp_path, "20260101-000000", {"knowledge": {"name": "knowledge"}})
    assert lines(needed(tmp_path, PRICER_KNOWLEDGE_BASE="gemma3-270m")) == ["smollm2-135m", "gemma3-270m"]


def test_missing_lists_only_what_the_store_has_not_prepared(tmp_path):
    bundle(tmp_path, "20260101-000000", {**SHIPPED_LIKE, "knowledge": {"name": "knowledge", "base_model": QWEN}})
    prepared(tmp_path, "smollm2-135m")
    assert lines(needed(tmp_path, "--missing")) == [QWEN]
    prepared(tmp_path, QWEN)
    assert lines(needed(tmp_path, "--missing")) == []
    assert json.loads(needed(tmp_path, "--missing", "--json").stdout)["bases"] == []


def test_the_bundle_read_is_the_one_a_replica_would_serve(tmp_path):
    older = bundle(tmp_path, "20260101-000000", {"knowledge": {"name": "knowledge", "base_model": QWEN}})
    bundle(tmp_path, "20260102-000000", SHIPPED_LIKE)
    assert lines(needed(tmp_path)) == ["smollm2-135m"]  # policy latest: the newer, without knowledge
    assert lines(needed(tmp_path, PRICER_ENSEMBLE_DIR=str(older))) == ["smollm2-135m", QWEN]  # pinned
    assert lines(needed(tmp_path, PRICER_ESTIMATOR="llm")) == ["smollm2-135m"]  # the LLM alone: no bundle
    assert lines(needed(tmp_path, PRICER_BASE_MODEL="gemma3-270m")) == ["gemma3-270m", "smollm2-135m"]


def test_an_empty_store_needs_the_served_base(tmp_path):
    out = json.loads(needed(tmp_path / "nothing-here", "--json").stdout)
    assert out["bundle"] is None and [b["name"] for b in out["bases"]] == ["smollm2-135m"]


def test_a_broken_manifest_is_a_clear_error_with_exit_2(tmp_path):
    folder = bundle(tmp_path, "20260101-000000", SHIPPED_LIKE)
    (folder / "manifest.json").write_text("{not json")
    result = needed(tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error:" in result.output and "manifest.json" in result.output


def test_a_member_without_its_estimator_json_is_a_clear_error_with_exit_2(tmp_path):
    folder = bundle(tmp_path, "20260101-000000", SHIPPED_LIKE)
    (folder / "members" / "llm-head" / "estimator.json").unlink()
    result = needed(tmp_path, "--missing")
    assert result.exit_code == 2 and "member 'llm-head'" in result.output and "estimator.json" in result.output


def test_the_shipped_bundle_needs_only_packaged_bases():
    """What this checkout's default answer needs: bases `pricer model prepare` can make (the Makefile
    installs their packages: tests/deploy/test_bases_install.py)."""
    names = lines(needed(ROOT / "models"))
    assert names[0] == "smollm2-135m" and set(names) <= set(PACKAGED), names
