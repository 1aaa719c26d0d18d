"""/healthz answers while the model loads; /readyz is 503 before start, 200 when warmed, 503 after
the engine dies; estimates are 503 problem+json while not ready."""

from __future__ import annotations

import asyncio

from app.engine.fake import FakeEngine


async def test_ready_only_after_the_engine_started(make_service, store):
    engine = FakeEngine(start_delay_s=0.5, model_dir=store / "base" / "fake")
    async with make_service(engine=engine, wait=False) as (client, app):
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
        assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
        assert "loading" in response.json()["detail"]
        early = await client.post("/v1/estimate", json={"title": "a"})
        assert early.status_code == 503 and early.headers["retry-after"]
        await app.state.lifecycle.wait_ready()
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.post("/v1/estimate", json={"title": "a"})).status_code == 200


async def test_engine_death_makes_readyz_503(service):
    client, app = service
    app.state.lifecycle.engine.kill()
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get("/readyz")
    assert response.status_code == 503 and "dead" in response.json()["detail"]
    estimate = await client.post("/v1/estimate", json={"title": "a"})
    assert estimate.status_code == 503 and estimate.headers["content-type"] == "application/problem+json"
    assert "restart" in estimate.json()["detail"]


async def test_a_passed_engine_is_not_closed_but_an_owned_one_would_be(make_service, store):
    engine = FakeEngine(model_dir=store / "base" / "fake")
    async with make_service(engine=engine) as (client, app):
        assert (await client.get("/readyz")).status_code == 200
    assert not engine.closed and engine.ready


async def test_failed_start_is_reported_by_readyz(make_service, store):
    engine = FakeEngine(model_dir=store / "base" / "fake")

    async def broken_start():
        raise RuntimeError("model folder unreadable")

    engine.start = broken_start
    async with make_service(engine=engine, wait=False) as (client, app):
        await asyncio.sleep(0.05)
        response = await client.get("/readyz")
        assert response.status_code == 503 and "model folder unreadable" in response.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200
