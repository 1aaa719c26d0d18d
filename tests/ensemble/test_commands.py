"""`pricer ensemble fit` end to end on synthetic items: members fitted on train only, a report
member, a bundle that loads and combines, cross-validated scores with coverage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from app.cli import cli
from app.ensemble.bundle import Bundle
from app.model.item_files import write_items
from tests.factories import make_items


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_ensemble_fit_writes_a_bundle(tmp_path):
    train, val, store = tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "store"
    write_items(train, make_items(120, seed=1))
    write_items(val, make_items(60, seed=2))
    report = tmp_path / "constant.jsonl"
    out = run("evaluate", "--data", val, "--estimator", "constant", "--train", train, "--report", report)
    assert out.exit_code == 0, out.output
    adapter = store / "adapters" / "pricer-x" / "v1"
    adapter.mkdir(parents=True)
    (adapter / "manifest.json").write_text("{}\n")
    saved = tmp_path / "saved-constant"
    assert run("fit", "--estimator", "constant", "--data", val, "--out", saved).exit_code == 0
    out = run("ensemble", "fit", "--train", train, "--val", val, "--member", "bow-ridge", "--member", "features-lr",
              "--member", f"prior={saved}",
              "--member-report", f"llm={report}", "--member-ref", "llm=adapters/pricer-x/v1",
              "--models-dir", store, "--name", "t", "--reports-out", tmp_path / "answers", "--json")
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in (tmp_path / "answers").iterdir()) == [
        "bow-ridge.jsonl", "features-lr.jsonl", "llm.jsonl", "prior.jsonl"]
    assert "stack bow-ridge+features-lr+llm+prior" in out.stdout and "coverage" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    full = result["stacks"]["bow-ridge+features-lr+llm+prior"]
    assert 0 <= full["coverage"] <= 1 and full["mean_error_ci"][0] < full["mean_error"] < full["mean_error_ci"][1]
    bundle = Bundle.load(result["bundle"], store)
    assert bundle.member("bow-ridge")["kind"] == "saved" and bundle.member("llm")["ref"] == "adapters/pricer-x/v1"
    # the report is recorded by content, so a regenerated one can be checked against the bundle
    assert bundle.member("llm")["report"] == {
        "path": str(report), "rows": 60, "sha256": hashlib.sha256(report.read_bytes()).hexdigest()}
    # --train is credited only to the members fitted on it, not to a saved folder or a report
    manifest = json.loads((Path(result["bundle"]) / "manifest.json").read_text())
    assert manifest["data"]["train_used_by"] == ["bow-ridge", "features-lr"]
    assert bundle.member("prior")["fitted"] == "before (a saved folder)"
    price, low, high = bundle.ensemble.combine({"bow-ridge": 50.0, "features-lr": 60.0, "llm": None, "prior": 55.0})
    assert low <= price <= high
    shown = run("ensemble", "show", result["bundle"], "--models-dir", store)
    assert shown.exit_code == 0 and '"subsets": 15' in shown.stdout and "promotion" not in shown.stdout


def test_ensemble_show_prints_the_promotion_record(tmp_path):
    from app.build.promote import Decision, record
    from tests.api.ensemble_fixtures import write_test_bundle

    bundle = write_test_bundle(tmp_path)
    record(bundle, None, Decision(True, "nothing active to compare against"), "if-better", None)
    shown = run("ensemble", "show", bundle, "--models-dir", tmp_path)
    assert shown.exit_code == 0, shown.output
    promotion = json.loads(shown.stdout)["promotion"]
    assert promotion["promote"] is True and promotion["reason"] == "nothing active to compare against"
    assert promotion["rule"] == "if-better" and promotion["against"] is None and promotion["comparison"] is None


def test_ensemble_fit_refuses_a_report_on_other_items(tmp_path):
    train, val, other = tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "other.jsonl"
    write_items(train, make_items(50, seed=1))
    write_items(val, make_items(30, seed=2))
    write_items(other, make_items(30, seed=3))
    report = tmp_path / "r.jsonl"
    assert run("evaluate", "--data", other, "--estimator", "constant", "--train", train, "--report", report).exit_code == 0
    out = run("ensemble", "fit", "--val", val, "--member-report", f"llm={report}", "--models-dir", tmp_path)
    assert out.exit_code == 2
    assert "not on the stacking items" in out.output


def test_a_frontier_report_becomes_an_endpoint_member(tmp_path, monkeypatch):
    """`--member-report frontier=FILE`: the bundle records what the frontier model was asked with
    (model, comparables) and no store path; Bundle.load checks nothing on disk for it."""
    train, val, store = tmp_path / "train.jsonl", tmp_path / "val.jsonl", tmp_path / "store"
    write_items(train, make_items(80, seed=1))
    write_items(val, make_items(40, seed=2))
    report = tmp_path / "frontier.jsonl"
    assert run("evaluate", "--data", val, "--estimator", "constant", "--train", train, "--report", report).exit_code == 0
    monkeypatch.setenv("PRICER_FRONTIER_MODEL", "gpt-test")
    monkeypatch.setenv("PRICER_FRONTIER_COMPARABLES", "3")
    out = run("ensemble", "fit", "--train", train, "--val", val, "--member", "bow-ridge",
              "--member-report", f"frontier={report}", "--models-dir", store, "--name", "t", "--json")
    assert out.exit_code == 0, out.output
    bundle = Bundle.load(json.loads(out.stdout.strip().splitlines()[-1])["bundle"], store)
    row = bundle.member("frontier")
    assert row["kind"] == "external" and row["estimator"] == "frontier"
    assert row["endpoint"] == {"model": "gpt-test", "comparables": 3} and "ref" not in row
