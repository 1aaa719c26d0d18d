"""The service layer without HTTP (app/api/serving.py), and over HTTP: the adapter that answered is
the one that reached the engine (the fake's prices differ per adapter), so a route that drops the
leased adapter fails here."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest

from app.adapters.manager import AdapterManager
from app.api.app import create_app
from app.api.errors import ProblemError
from app.api.schemas import EstimateRequest
from app.api.serving import EstimateService
from app.pricing.text import item_text
from app.engine.fake import FakeEngine
from app.model.spec import text_ceiling
from tests.adapters.conftest import V1, V2, store_settings
from tests.factories import make_lora_adapter

LAMP = {"title": "Brass desk lamp", "description": "E27 socket, 1.5 m cable."}


@pytest.fixture
def models_dir(tmp_path, tiny_model_dir):
    """A store with two versions of adapter "pa" (the manager makes V2 active: policy latest)."""
    for version, seed in ((V1, 1), (V2, 2)):
        make_lora_adapter(tiny_model_dir, tmp_path / "adapters", "pa", version, rank=4, seed=seed)
    return tmp_path


@pytest.fixture
def adapters_dir(models_dir):
    return models_dir / "adapters"


@pytest.fixture
async def serving(models_dir, tiny_model_dir):
    """An EstimateService over a fake engine and a real manager whose store holds pa@V1 and pa@V2 (V2 active)."""
    settings = store_settings(models_dir, tiny_model_dir)
    engine = FakeEngine(model_dir=tiny_model_dir)
    await engine.start()
    manager = AdapterManager(settings, engine, tiny_model_dir)
    await manager.start()
    yield EstimateService(settings, engine, manager), engine
    await manager.close()


def _text(body: dict, settings) -> str:
    return item_text(EstimateRequest(**body), text_ceiling(settings))


async def test_the_active_adapter_reaches_the_engine(serving):
    service, engine = serving
    answer = await service.estimate(EstimateRequest(**LAMP))
    text = _text(LAMP, service.settings)
    assert engine.calls[-1] == ([text], f"pa@{V2}")
    assert answer.adapter == f"pa@{V2}"
    assert answer.price == FakeEngine.price_for(text, f"pa@{V2}") != FakeEngine.price_for(text)


async def test_a_batch_with_mixed_pins_sends_each_group_with_its_adapter(serving):
    service, engine = serving
    items = [EstimateRequest(**LAMP), EstimateRequest(**LAMP, adapter=f"pa@{V1}"), EstimateRequest(title="Kettle")]
    batch = await service.estimate_batch(items)
    labels = [e.adapter for e in batch.estimates]
    assert labels == [f"pa@{V2}", f"pa@{V1}", f"pa@{V2}"]
    for item, answer in zip(items, batch.estimates, strict=True):
        assert answer.price == FakeEngine.price_for(_text(item.model_dump(), service.settings), answer.adapter)
    kettle = _text({"title": "Kettle"}, service.settings)
    [(texts, label)] = [call for call in engine.calls if kettle in call[0]]
    assert len(texts) == 2 and label == f"pa@{V2}"  # one engine call per adapter


async def test_an_item_empty_once_cleaned_is_422(serving):
    service, _ = serving
    with pytest.raises(ProblemError) as caught:
        await service.estimate(EstimateRequest(title=":::{}[]"))
    assert caught.value.status == 422


@asynccontextmanager
async def _http(models_dir, tiny_model_dir, **overrides):
    engine = FakeEngine(model_dir=tiny_model_dir)
    app = create_app(store_settings(models_dir, tiny_model_dir, **overrides), engine)
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client, engine


async def test_over_http_the_price_is_the_leased_adapter_s(models_dir, tiny_model_dir):
    async with _http(models_dir, tiny_model_dir) as (client, engine):
        single = (await client.post("/v1/estimate", json=LAMP)).json()
        pinned = (await client.post("/v1/estimate", json=LAMP | {"adapter": f"pa@{V1}"})).json()
        text = engine.calls[-1][0][0]
        assert single["price"] == FakeEngine.price_for(text, f"pa@{V2}")
        assert pinned["price"] == FakeEngine.price_for(text, f"pa@{V1}")
        batch = (await client.post("/v1/estimate/batch", json={"items": [LAMP, LAMP | {"adapter": f"pa@{V1}"}]})).json()
        assert [e["price"] for e in batch["estimates"]] == [single["price"], pinned["price"]]


async def test_409_details_name_no_store_internals_to_estimate_clients(models_dir, tiny_model_dir, adapters_dir):
    (adapters_dir / "pa" / V1 / "adapter_model.safetensors").write_bytes(b"not safetensors")
    async with _http(models_dir, tiny_model_dir, admin_key="admin") as (client, _):
        response = await client.post("/v1/estimate", json=LAMP | {"adapter": f"pa@{V1}"})
        assert response.status_code == 409 and response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert "safetensors" not in detail and str(adapters_dir) not in detail and "pa@" in detail
        rows = (await client.get("/v1/adapters", headers={"Authorization": "Bearer admin"})).json()["adapters"]
        assert "safetensors" in {r["version"]: r for r in rows}[V1]["reason"]  # operators see why
