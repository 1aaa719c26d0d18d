"""`pricer bench` against a real HTTP server running the app on the fake engine (the HTTP layer
only: nothing here says anything about vLLM's speed)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.api.app import create_app
from app.cli import cli
from app.config import Settings
from app.engine.fake import FakeEngine
from app.model.item_files import write_items
from tests.api.live_server import live_server
from tests.factories import make_items


def _app(tmp_path, **overrides):
    base = tmp_path / "base" / "fake"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    values = dict(models_dir=tmp_path, base_model=str(base), watch_adapters=False, default_adapter=None)
    values.update(overrides)
    return create_app(Settings(**values), FakeEngine(model_dir=base, latency_s=0.005))


def test_bench_reports_throughput_latency_and_json(tmp_path):
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(12, seed=1))
    with live_server(_app(tmp_path)) as url:
        result = CliRunner().invoke(cli, ["bench", "--url", url, "--data", str(data), "--concurrency", "3", "--requests", "30", "--rounds", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["requests"] == 60 and summary["ok"] == 60 and summary["errors"] == {}  # 2 rounds of 30
    assert summary["requests_per_s"] > 0
    assert 5 <= summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert summary["model"] == "fake-model"
    assert "requests/s" in result.output


def test_bench_counts_rejected_requests_by_status(tmp_path):
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(4, seed=1))
    with live_server(_app(tmp_path, api_key="secret")) as url:
        wrong = CliRunner().invoke(cli, ["bench", "--url", url, "--data", str(data), "--requests", "5", "--api-key", "nope"])
        right = CliRunner().invoke(cli, ["bench", "--url", url, "--data", str(data), "--requests", "5", "--api-key", "secret", "--json"])
    assert wrong.exit_code == 1 and "401" in wrong.output  # the probe request says why
    assert json.loads(right.output.strip().splitlines()[-1])["ok"] == 5


def test_bench_with_a_missing_data_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--data", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_bench_retries_a_shed_request_after_the_wait_it_asks_for(tmp_path):
    """A service that sheds (admission by latency) answers every request of a well-behaved client."""
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(12, seed=2))
    base = tmp_path / "base" / "fake"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    settings = Settings(models_dir=tmp_path, base_model=str(base), watch_adapters=False, default_adapter=None,
                        max_inflight_per_client=1.0, admission_target_s=0.1, admission_floor=1)
    app = create_app(settings, FakeEngine(model_dir=base, latency_s=0.05, capacity=1))  # 20 a second: 2 in time
    args = ["bench", "--data", str(data), "--concurrency", "12", "--requests", "60", "--json"]
    with live_server(app) as url:
        patient = CliRunner().invoke(cli, args + ["--url", url])
        impatient = CliRunner().invoke(cli, args + ["--url", url, "--retries-429", "0"])
    assert patient.exit_code == 0, patient.output
    summary = json.loads(patient.output.strip().splitlines()[-1])
    assert summary["ok"] == 60 and summary["errors"] == {} and summary["retried_429"] > 0
    assert json.loads(impatient.output.strip().splitlines()[-1])["errors"].get("429", 0) > 0
