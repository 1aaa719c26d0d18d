"""A client's mistake is a 4xx problem+json that says what to fix, and the service stays ready."""

from __future__ import annotations

import pytest

from app.engine.base import EngineError

PROBLEM = "application/problem+json"


async def _assert_problem(client, response, status: int, detail_has: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    assert body["request_id"] == response.headers["x-request-id"]
    assert detail_has in body["detail"], body["detail"]
    assert (await client.get("/readyz")).status_code == 200  # still healthy
    return body


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers", "status", "detail_has"),
    [
        (b"", JSON, 422, "body is empty"),
        (b"", {}, 422, "body is empty"),
        (b"{not json", JSON, 422, "not valid JSON"),
        (b"title=drill", {"content-type": "application/x-www-form-urlencoded"}, 422, "Content-Type: application/json"),
        (b'{"title": "a"}', {"content-type": "text/plain"}, 422, "Content-Type: application/json"),
        (b"[1, 2]", JSON, 422, "must be a JSON object"),
        (b'"just a string"', JSON, 422, "must be a JSON object"),
        (b'{"title": "caf\xe9"}', JSON, 400, "not valid UTF-8"),
        (b"{}", JSON, 422, "non-empty `title` or `description`"),
        (b'{"title": "   ", "description": ""}', JSON, 422, "non-empty `title` or `description`"),
    ],
)
async def test_bad_bodies(client, content, headers, status, detail_has):
    response = await client.post("/v1/estimate", content=content, headers=headers)
    await _assert_problem(client, response, status, detail_has)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": 12}, "title"),
        ({"title": "a", "features": ["ok", 3]}, "features[1]"),
        ({"title": "a", "details": {"Rank": {"Tools": {"deeper": 1}}}}, "details.Rank"),
        ({"title": "a", "adapter": ["x"]}, "adapter"),
        ({"title": "a", "titel": "typo"}, "titel"),
    ],
)
async def test_wrong_types_name_the_field(client, body, field):
    response = await client.post("/v1/estimate", json=body)
    problem = await _assert_problem(client, response, 422)
    assert problem["errors"][0]["field"] == field
    assert problem["detail"].startswith(field + ":")


async def test_batch_field_paths_include_the_item_index(client):
    response = await client.post("/v1/estimate/batch", json={"items": [{"title": "ok"}, {"title": 5}]})
    problem = await _assert_problem(client, response, 422)
    assert problem["errors"][0]["field"] == "items[1].title"


async def test_unknown_adapter_is_404(client):
    for pin in ("no-such-adapter", "no-such-adapter@20260101-000000"):
        response = await client.post("/v1/estimate", json={"title": "a", "adapter": pin})
        await _assert_problem(client, response, 404, "no-such-adapter")


async def test_unknown_route_and_method(client):
    await _assert_problem(client, await client.get("/v1/nothing"), 404, "GET /docs")
    await _assert_problem(client, await client.get("/v1/estimate"), 405, "not allowed")


async def test_engine_failure_is_503_and_a_bug_is_a_500_problem(service):
    client, app = service
    app.state.lifecycle.engine.fail_with = EngineError("out of KV cache")
    response = await client.post("/v1/estimate", json={"title": "a"})
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
    assert "retry" in response.json()["detail"] and response.headers["retry-after"]
    app.state.lifecycle.engine.fail_with = RuntimeError("a bug")
    response = await client.post("/v1/estimate", json={"title": "a"})
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM
    assert "a bug" not in response.text  # no internals leak
    app.state.lifecycle.engine.fail_with = None
    assert (await client.post("/v1/estimate", json={"title": "a"})).status_code == 200


async def test_docs_and_openapi_are_served(client):
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/estimate" in spec["paths"] and "/v1/estimate/batch" in spec["paths"]
