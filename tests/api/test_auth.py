"""Bearer keys: one for estimates (optional), a separate one for administration; without the admin key
the admin routes fail closed (loopback only)."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request

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


# --- Fail closed: without PRICER_ADMIN_KEY the admin routes answer only loopback clients of a loopback bind

ADMIN_CALLS = [
    ("GET", "/v1/adapters"), ("POST", "/v1/adapters/rescan"), ("POST", "/v1/adapters/a/20260101-000000-s1/activate"),
    ("GET", "/v1/ensembles"), ("POST", "/v1/ensembles/e/20260101-000000/activate"), ("GET", "/v1/fleet"),
]


def client_at(app, host: str, headers: dict | None = None) -> httpx.AsyncClient:
    """A client whose requests come from `host` (the ASGI scope's client address)."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://pricer.test", headers=headers or {})


@pytest.mark.parametrize(
    ("bind", "peer", "headers"),
    [
        ("127.0.0.1", "203.0.113.7", {}),  # a remote client of a loopback bind (a tunnel, a port forward)
        ("0.0.0.0", "127.0.0.1", {}),  # a local client of a service every interface reaches
        ("127.0.0.1", "127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),  # a proxy on this machine relays it
        ("127.0.0.1", "127.0.0.1", {"Forwarded": "for=203.0.113.7"}),
    ],
)
async def test_without_an_admin_key_admin_routes_refuse_all_but_local_clients(make_service, bind, peer, headers):
    async with make_service(host=bind) as (_, app), client_at(app, peer, headers) as client:
        for method, path in ADMIN_CALLS:
            response = await client.request(method, path)
            assert response.status_code == 403, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["type"].endswith("admin-key-required") and "PRICER_ADMIN_KEY" in problem["detail"]
            assert "Authorization: Bearer" in problem["detail"]
        # Estimates and probes stay open (no PRICER_API_KEY): only the admin routes close.
        assert (await client.post("/v1/estimate", json=ITEM)).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "127.0.0.53"])
async def test_without_an_admin_key_a_loopback_client_of_a_loopback_bind_is_served(make_service, peer):
    async with make_service(host="127.0.0.1") as (_, app), client_at(app, peer) as client:
        assert (await client.get("/v1/adapters")).status_code == 200
        assert (await client.get("/v1/fleet")).status_code == 200
        unknown = await client.post("/v1/adapters/a/20260101-000000-s1/activate")
        assert unknown.status_code == 404  # past the door: the manager answers, no such version


async def test_with_an_admin_key_any_client_that_sends_it_is_served(make_service):
    async with make_service(host="0.0.0.0", admin_key="admin-key") as (_, app):
        async with client_at(app, "203.0.113.7") as client:
            assert (await client.get("/v1/fleet")).status_code == 401
            keyed = {"Authorization": "Bearer admin-key"}
            assert (await client.get("/v1/fleet", headers=keyed)).status_code == 200
            assert (await client.get("/v1/adapters", headers=keyed)).status_code == 200


async def test_the_route_dependency_refuses_too_when_the_middleware_is_bypassed(make_service):
    """The routes' own check (deps.require_admin_key), not only the middleware's."""
    from app.api.deps import require_admin_key
    from app.api.errors import ProblemError

    async with make_service(host="127.0.0.1") as (_, app):
        def request(peer, headers=()):
            scope = {"type": "http", "app": app, "client": (peer, 1), "headers": [(k.encode(), v.encode()) for k, v in headers]}
            return Request(scope)

        await require_admin_key(request("127.0.0.1"), None)
        for peer, headers in (("203.0.113.7", ()), ("127.0.0.1", (("x-real-ip", "203.0.113.7"),))):
            with pytest.raises(ProblemError) as refused:
                await require_admin_key(request(peer, headers), None)
            assert refused.value.status == 403


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("::ffff:127.0.0.1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("example.com", False), (None, False), ("", False)],
)
def test_is_loopback(host, loopback):
    from app.api.auth import is_loopback

    assert is_loopback(host) is loopback
