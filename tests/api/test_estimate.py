"""POST /v1/estimate and /v1/estimate/batch on the fake engine: shapes, order, text, request ids."""

from __future__ import annotations

from app.engine.fake import FakeEngine
from app.model.text import compose_contents, compose_text

BODY = {
    "title": "Acme cordless drill",
    "description": "Brushless motor with two batteries.",
    "features": ["2 speeds", "LED light"],
    "details": {"Brand": "Acme"},
    "category": "Tools",
}


async def test_estimate_answers_the_contract(service):
    client, app = service
    response = await client.post("/v1/estimate", json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"price", "low", "high", "currency", "model", "adapter", "request_id"}
    assert body["currency"] == "USD" and body["model"] == "fake-model" and body["adapter"] is None
    assert body["low"] <= body["price"] <= body["high"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_item_text_is_built_like_curation_builds_it(service):
    client, app = service
    await client.post("/v1/estimate", json=BODY)
    expected = compose_text(BODY["title"], compose_contents(BODY["description"], BODY["features"], BODY["details"]))
    texts, adapter = app.state.lifecycle.engine.calls[-1]
    assert texts == [expected] and adapter is None
    body = (await client.post("/v1/estimate", json=BODY)).json()
    assert body["price"] == FakeEngine.base_price(expected)


async def test_description_alone_is_enough(client):
    response = await client.post("/v1/estimate", json={"description": "A red kettle, 1.7 litres."})
    assert response.status_code == 200


async def test_request_id_is_taken_when_safe_and_replaced_when_not(client):
    kept = await client.post("/v1/estimate", json=BODY, headers={"X-Request-Id": "order-42.a:b_c"})
    assert kept.headers["x-request-id"] == "order-42.a:b_c" and kept.json()["request_id"] == "order-42.a:b_c"
    for bad in ("x" * 200, "id with spaces", "new\\nline", "ünïcode"):
        response = await client.post("/v1/estimate", json=BODY, headers={"X-Request-Id": bad.encode("utf-8")})
        assert response.status_code == 200
        assert response.headers["x-request-id"] != bad and len(response.headers["x-request-id"]) == 32


async def test_request_id_is_on_errors_and_probes(client):
    response = await client.post("/v1/estimate", json={}, headers={"X-Request-Id": "err-1"})
    assert response.status_code == 422
    assert response.headers["x-request-id"] == "err-1" and response.json()["request_id"] == "err-1"
    assert (await client.get("/healthz", headers={"X-Request-Id": "probe-1"})).headers["x-request-id"] == "probe-1"


async def test_batch_answers_in_order(service):
    client, app = service
    items = [{"title": f"Acme thing number {i}", "description": f"variant {i}"} for i in range(7)]
    response = await client.post("/v1/estimate/batch", json={"items": items})
    assert response.status_code == 200, response.text
    estimates = response.json()["estimates"]
    assert len(estimates) == 7
    singles = [(await client.post("/v1/estimate", json=item)).json()["price"] for item in items]
    assert [e["price"] for e in estimates] == singles
    assert len({e["request_id"] for e in estimates}) == 1
    assert len(app.state.lifecycle.engine.calls[0][0]) == 7  # one engine call for the whole batch


async def test_batch_over_the_limit_is_413(make_service):
    async with make_service(max_batch=3) as (client, _):
        response = await client.post("/v1/estimate/batch", json={"items": [{"title": "a"}] * 4})
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert "PRICER_MAX_BATCH" in response.json()["detail"]
        assert (await client.post("/v1/estimate/batch", json={"items": [{"title": "a"}] * 3})).status_code == 200


async def test_empty_batch_is_422(client):
    response = await client.post("/v1/estimate/batch", json={"items": []})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "items"


async def test_long_description_is_cut_before_the_engine(service):
    client, app = service
    response = await client.post("/v1/estimate", json={"title": "Acme", "description": "word " * 200_000})
    assert response.status_code == 200
    (text,), _ = app.state.lifecycle.engine.calls[-1]
    settings = app.state.settings
    assert len(text) <= settings.prompt_token_budget * 32 + 10
