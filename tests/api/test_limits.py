"""Backpressure (429 + Retry-After past max_inflight) and the body size limit (413)."""

from __future__ import annotations

import asyncio

from app.engine.fake import FakeEngine


async def test_over_max_inflight_is_429_with_retry_after(make_service, store):
    engine = FakeEngine(latency_s=0.3, model_dir=store / "base" / "fake")
    async with make_service(engine=engine, max_inflight=2, max_inflight_per_client=1.0) as (client, _):
        requests = [client.post("/v1/estimate", json={"title": f"item {i}"}) for i in range(6)]
        # Probes are not limited: they answer while the service is saturated.
        probe = asyncio.create_task(_probe_when_busy(client, engine))
        responses = await asyncio.gather(*requests)
        assert (await probe) == 200
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 200, 429, 429, 429, 429]
        rejected = next(r for r in responses if r.status_code == 429)
        assert rejected.headers["retry-after"] == "1"
        assert rejected.headers["content-type"] == "application/problem+json"
        assert "PRICER_MAX_INFLIGHT" in rejected.json()["detail"]
        assert engine.max_in_flight == 2
        # Once the load is gone, requests are served again.
        assert (await client.post("/v1/estimate", json={"title": "after"})).status_code == 200


async def _probe_when_busy(client, engine) -> int:
    while engine.in_flight == 0:
        await asyncio.sleep(0.01)
    return (await client.get("/readyz")).status_code


async def test_body_over_the_limit_is_413(make_service):
    async with make_service(max_body_bytes=4096) as (client, _):
        big = {"title": "a", "description": "x" * 5000}
        response = await client.post("/v1/estimate", json=big)
        assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
        assert "PRICER_MAX_BODY_BYTES" in response.json()["detail"]
        assert (await client.get("/readyz")).status_code == 200


async def test_streamed_body_over_the_limit_is_413(make_service):
    async def chunks():
        yield b'{"title": "a", "description": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    async with make_service(max_body_bytes=4096) as (client, _):
        response = await client.post("/v1/estimate", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text
        assert "PRICER_MAX_BODY_BYTES" in response.json()["detail"]
        assert (await client.get("/readyz")).status_code == 200


async def test_a_megabyte_description_under_the_limit_is_accepted(client):
    response = await client.post("/v1/estimate", json={"title": "Acme", "description": "long text " * 100_000})
    assert response.status_code == 200
