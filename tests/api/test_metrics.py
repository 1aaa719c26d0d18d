"""/metrics: our series with bounded labels, on prometheus-client's default registry."""

from __future__ import annotations

import io
import json
import logging

from prometheus_client import REGISTRY

from app.api.logging_setup import build_handler
from app.engine.base import EngineError


def _value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_by_route_template_and_status(client):
    before_ok = _value("pricer_requests_total", route="/v1/estimate", status="200")
    before_bad = _value("pricer_requests_total", route="/v1/estimate", status="422")
    before_dollars = _value("pricer_estimate_dollars_count")
    before_batch = _value("pricer_batch_items_sum")
    await client.post("/v1/estimate", json={"title": "a"})
    await client.post("/v1/estimate", json={})
    await client.post("/v1/estimate/batch", json={"items": [{"title": "b"}, {"title": "c"}]})
    await client.get("/no/such/path/12345")
    await client.post("/v1/adapters/some-name/some-version/activate")
    assert _value("pricer_requests_total", route="/v1/estimate", status="200") == before_ok + 1
    assert _value("pricer_requests_total", route="/v1/estimate", status="422") == before_bad + 1
    assert _value("pricer_estimate_dollars_count") == before_dollars + 3
    assert _value("pricer_batch_items_sum") == before_batch + 2
    assert _value("pricer_requests_total", route="unmatched", status="404") >= 1
    assert _value("pricer_requests_total", route="/v1/adapters/{name}/{version}/activate", status="404") >= 1
    assert _value("pricer_request_duration_seconds_count", route="/v1/estimate") >= 2
    assert _value("pricer_inflight_requests") == 0


async def test_metrics_endpoint_serves_the_default_registry(client):
    await client.post("/v1/estimate", json={"title": "a"})
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "pricer_requests_total", "pricer_request_duration_seconds_bucket", "pricer_estimate_dollars_bucket",
        "pricer_batch_items_bucket", "pricer_inflight_requests", "pricer_model_info",
    ):
        assert name in text, name
    assert 'pricer_model_info{adapter="",base="fake-model"} 1.0' in text
    assert 'le="1000.0"' in text  # dollar buckets reach $1,000


async def test_access_log_is_one_json_object_with_request_id_route_status_duration(client):
    handler = build_handler(json_logs=True, stream=io.StringIO())
    logger = logging.getLogger("pricer.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await client.post("/v1/estimate", json={"title": "a"}, headers={"X-Request-Id": "log-me-1"})
    finally:
        logger.removeHandler(handler)
    lines = handler.stream.getvalue().splitlines()
    record = json.loads(lines[-1])
    assert record["request_id"] == "log-me-1" and record["route"] == "/v1/estimate"
    assert record["status"] == 200 and record["duration_ms"] >= 0 and record["level"] == "INFO"


async def test_every_log_line_of_a_request_carries_its_id(service):
    client, app = service
    handler = build_handler(json_logs=True, stream=io.StringIO())
    logger = logging.getLogger("app.api.errors")
    logger.addHandler(handler)
    app.state.lifecycle.engine.fail_with = EngineError("boom")
    try:
        await client.post("/v1/estimate", json={"title": "a"}, headers={"X-Request-Id": "engine-log-1"})
    finally:
        logger.removeHandler(handler)
    record = json.loads(handler.stream.getvalue().splitlines()[-1])
    assert record["request_id"] == "engine-log-1" and "boom" in record["message"]
