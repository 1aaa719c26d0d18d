"""Optional bearer keys: one for estimates, a separate one for adapter administration."""

from __future__ import annotations

import pytest

ITEM = {"title": "Acme kettle"}


@pytest.fixture
async def keyed(make_service):
    async with make_service(api_key="estimate-key", admin_key="admin-key") as pair:
        yield pair[0]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer ", "Basic estimate-key", "Bearer wrong", "Bearer admin-key", "estimate-key"]
)
async def test_estimates_need_the_api_key(keyed, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    for path, body in (("/v1/estimate", ITEM), ("/v1/estimate/batch", {"items": [ITEM]})):
        response = await keyed.post(path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in response.json()["detail"] or "wrong" in response.json()["detail"]
    assert (await keyed.get("/readyz")).status_code == 200


async def test_the_right_key_is_accepted(keyed):
    response = await keyed.post("/v1/estimate", json=ITEM, headers={"Authorization": "Bearer estimate-key"})
    assert response.status_code == 200


async def test_admin_routes_need_the_admin_key_not_the_api_key(keyed):
    assert (await keyed.get("/v1/adapters")).status_code == 401
    assert (await keyed.get("/v1/adapters", headers={"Authorization": "Bearer estimate-key"})).status_code == 401
    response = await keyed.get("/v1/adapters", headers={"Authorization": "Bearer admin-key"})
    assert response.status_code == 200 and response.json()["adapters"] == []


async def test_probes_and_metrics_need_no_key(keyed):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await keyed.get(path)).status_code == 200


async def test_no_key_set_means_none_needed(client):
    assert (await client.post("/v1/estimate", json=ITEM)).status_code == 200
    assert (await client.get("/v1/adapters")).status_code == 200
