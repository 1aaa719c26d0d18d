"""`pricer bench overload` on a live server over the fake engine: bounded, loopback only, and it reports
the 429 share and latency percentiles (the numbers in docs/api.md come from the real engine)."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from app.api.app import create_app
from app.bench.overload import overload
from app.cli import cli
from app.config import Settings
from app.engine.fake import FakeEngine
from tests.api.live_server import fake_base, live_server


def test_overload_reports_the_429_share_and_percentiles(tmp_path):
    base = fake_base(tmp_path)
    settings = Settings(_env_file=None, models_dir=tmp_path, base_model=str(base), watch_adapters=False,
                        default_adapter=None, max_inflight=4, max_inflight_per_client=1.0)
    app = create_app(settings, FakeEngine(model_dir=base, latency_s=0.05))
    with live_server(app) as url:
        bodies = [{"title": f"thing {i}"} for i in range(8)]
        result = asyncio.run(overload(url, bodies, clients=16, seconds=2, max_requests=400, backoff_s=0.02, headers={}))
    assert result["ok"] > 0 and 0 < result["share_429"] < 1 and result["retry_after_on_429"]
    assert result["requests"] <= 400 and result["p50_ms"] <= result["p99_ms"]
    assert set(result["statuses"]) <= {"200", "429"}


def test_overload_refuses_a_remote_url():
    result = CliRunner().invoke(cli, ["bench", "overload", "--url", "http://example.com:8000", "--seconds", "1"])
    assert result.exit_code == 2 and "loopback" in result.output
