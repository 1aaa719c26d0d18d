"""The admin API over HTTP (FakeEngine: this tests routing, auth and error mapping, not inference)."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx

from app.api.app import create_app
from app.engine.fake import FakeEngine
from tests.adapters.conftest import V1, V2, store_settings

ADMIN = {"Authorization": "Bearer admin-secret"}


@asynccontextmanager
async def service(models_dir, base, peer: str = "127.0.0.1", **overrides):
    """The service on the store, its client at address `peer`; the admin key unless overridden."""
    settings = store_settings(models_dir, base, **({"admin_key": "admin-secret"} | overrides))
    app = create_app(settings, FakeEngine(model_dir=base))
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://pricer.test") as client:
            yield client


async def test_list_activate_rollback_unload(models_dir, tiny_model_dir, store):
    async with service(models_dir, tiny_model_dir) as client:
        listing = (await client.get("/v1/adapters", headers=ADMIN)).json()
        assert listing["active"] == f"pa@{V2}" and listing["policy"] == "latest"
        rows = {r["version"]: r for r in listing["adapters"]}
        assert rows[V2]["status"] == "active" and rows[V1]["status"] == "available"
        assert rows[V1]["validation"]["mean_error"] == 90.0

        answer = await client.post("/v1/estimate", json={"title": "Desk lamp"})
        assert answer.json()["adapter"] == f"pa@{V2}"

        rolled = await client.post(f"/v1/adapters/pa/{V1}/activate", headers=ADMIN)
        assert rolled.status_code == 200 and rolled.json()["active"] == f"pa@{V1}"
        assert (await client.post("/v1/estimate", json={"title": "Desk lamp"})).json()["adapter"] == f"pa@{V1}"
        pinned = await client.post("/v1/estimate", json={"title": "Desk lamp", "adapter": f"pa@{V2}"})
        assert pinned.json()["adapter"] == f"pa@{V2}"

        unloaded = await client.delete(f"/v1/adapters/pa/{V2}", headers=ADMIN)
        assert unloaded.status_code == 200
        rows = {r["version"]: r["status"] for r in (await client.get("/v1/adapters", headers=ADMIN)).json()["adapters"]}
        assert rows == {V1: "active", V2: "available"}


async def test_admin_errors_are_problems(models_dir, tiny_model_dir, store):
    async with service(models_dir, tiny_model_dir) as client:
        assert (await client.get("/v1/adapters")).status_code == 401
        wrong = await client.get("/v1/adapters", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["content-type"].startswith("application/problem+json")
        missing = await client.post("/v1/adapters/pa/20990101-000000-s1/activate", headers=ADMIN)
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
        active = await client.delete(f"/v1/adapters/pa/{V2}", headers=ADMIN)
        assert active.status_code == 409 and "active" in active.json()["detail"]
        unknown_pin = await client.post("/v1/estimate", json={"title": "Lamp", "adapter": "nope"})
        assert unknown_pin.status_code == 404


async def test_rejected_version_answers_409(models_dir, tiny_model_dir, store):
    (store / "pa" / V1 / "adapter_model.safetensors").write_bytes(b"not safetensors")
    async with service(models_dir, tiny_model_dir) as client:
        response = await client.post(f"/v1/adapters/pa/{V1}/activate", headers=ADMIN)
        assert response.status_code == 409 and "safetensors" in response.json()["detail"]
        pinned = await client.post("/v1/estimate", json={"title": "Lamp", "adapter": f"pa@{V1}"})
        assert pinned.status_code == 409
        listing = (await client.get("/v1/adapters", headers=ADMIN)).json()
        assert listing["active"] == f"pa@{V2}"
        assert {r["version"]: r["status"] for r in listing["adapters"]}[V1] == "rejected"


async def test_metrics_exposed(models_dir, tiny_model_dir, store):
    async with service(models_dir, tiny_model_dir) as client:
        await client.post("/v1/estimate", json={"title": "Desk lamp"})
        await client.post(f"/v1/adapters/pa/{V1}/activate", headers=ADMIN)
        text = (await client.get("/metrics")).text
        assert f'pricer_adapter_active_info{{name="pa",version="{V1}"}} 1.0' in text
        assert f'pricer_adapter_active_info{{name="pa",version="{V2}"}}' not in text
        assert 'pricer_adapter_loads_total{result="ok"}' in text
        assert "pricer_adapter_swap_seconds_count" in text
        assert 'pricer_adapter_requests_total{adapter="pa"}' in text


async def test_without_an_admin_key_only_a_local_operator_rolls_back(models_dir, tiny_model_dir, store):
    """Fail closed: no key, a client from elsewhere neither rolls back nor sees the store; on the
    machine itself (loopback client, loopback bind: `make serve`) the same call writes the desired state."""
    async with service(models_dir, tiny_model_dir, peer="198.51.100.9", admin_key=None) as remote:
        refused = await remote.post(f"/v1/adapters/pa/{V1}/activate")
        assert refused.status_code == 403 and "PRICER_ADMIN_KEY" in refused.json()["detail"]
        assert (await remote.get("/v1/adapters")).status_code == 403
        assert (await remote.post("/v1/estimate", json={"title": "Desk lamp"})).json()["adapter"] == f"pa@{V2}"
    async with service(models_dir, tiny_model_dir, admin_key=None, host="127.0.0.1") as local:
        rolled = await local.post(f"/v1/adapters/pa/{V1}/activate")
        assert rolled.status_code == 200 and rolled.json()["active"] == f"pa@{V1}"
        assert rolled.json()["generation"] is not None  # written to the store's desired state
        assert (await local.post("/v1/estimate", json={"title": "Desk lamp"})).json()["adapter"] == f"pa@{V1}"
