"""Versions stay honest after validation (app/adapters/guard.py): files changed since validation are
refused at activation, and an active version whose estimates keep failing is rolled back (fake engine:
this tests the manager's logic; tests/e2e covers the real engine)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from app.adapters.manager import AdapterManager, AdapterUnavailableError
from app.api.app import create_app
from app.engine.fake import FakeEngine
from tests.adapters.conftest import V1, V2, store_settings

ADMIN = {"Authorization": "Bearer admin"}


def _poison(folder) -> None:
    """Valid safetensors, same names and shapes, every value NaN."""
    path = folder / "adapter_model.safetensors"
    tensors = {k: torch.full_like(v, float("nan")) for k, v in load_file(path).items()}
    save_file(tensors, path)


async def test_a_version_changed_after_validation_is_refused_at_activation(models_dir, tiny_model_dir, store):
    engine = FakeEngine(model_dir=tiny_model_dir)
    await engine.start()
    manager = AdapterManager(store_settings(models_dir, tiny_model_dir), engine, tiny_model_dir)
    await manager.start()
    assert manager.active.label == f"pa@{V2}"  # V1 was validated at the scan, never loaded
    _poison(store / "pa" / V1)
    with pytest.raises(AdapterUnavailableError, match="changed since validation"):
        await manager.activate("pa", V1)
    assert manager.active.label == f"pa@{V2}"
    row = {r["version"]: r for r in manager.snapshot()}[V1]
    assert row["status"] == "rejected" and "adapter_model.safetensors" in row["reason"]
    assert not any(ref.version == V1 for ref in engine.loaded.values())
    await manager.close()


async def test_a_failing_active_version_is_rolled_back_and_counted(models_dir, tiny_model_dir, store):
    engine = FakeEngine(model_dir=tiny_model_dir)
    settings = store_settings(models_dir, tiny_model_dir, admin_key="admin", rollback_after_failures=3)
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            before = _rollbacks((await client.get("/metrics")).text)
            assert (await client.post(f"/v1/adapters/pa/{V1}/activate", headers=ADMIN)).status_code == 200
            engine.fail_for.add(f"pa@{V1}")
            for _ in range(3):
                assert (await client.post("/v1/estimate", json={"title": "Lamp"})).status_code == 503
            for _ in range(50):
                if app.state.lifecycle.adapters.active.label != f"pa@{V1}":
                    break
                await asyncio.sleep(0.02)
            answer = await client.post("/v1/estimate", json={"title": "Lamp"})
            assert answer.status_code == 200 and answer.json()["adapter"] == f"pa@{V2}"
            assert answer.json()["price"] == FakeEngine.price_for(engine.calls[-1][0][0], f"pa@{V2}")
            rows = {r["version"]: r for r in (await client.get("/v1/adapters", headers=ADMIN)).json()["adapters"]}
            assert rows[V1]["status"] == "rejected" and "rolled back" in rows[V1]["reason"]
            assert _rollbacks((await client.get("/metrics")).text) == before + 1


def _rollbacks(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("pricer_adapter_rollbacks_total "):
            return float(line.split()[1])
    raise AssertionError("pricer_adapter_rollbacks_total is missing")
