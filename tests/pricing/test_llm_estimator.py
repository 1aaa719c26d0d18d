"""The `llm` estimator: which version answers is app.adapters' decision (policy, persisted state,
checks), exactly as in the service; and pricing through the real engine."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.adapters.state import save_active, state_path
from app.engine.base import AdapterRef
from app.estimators.base import EstimatorOptions, create
from app.pricing.llm_estimator import AdapterNotFoundError, LlmEstimator, store_pin
from tests.adapters.engine_double import RecordingEngine
from tests.conftest import tiny_engine_settings
from tests.factories import make_items, make_lora_adapter

S1, S2, S3 = "20260101-000000-s1", "20260102-000000-s2", "20260103-000000-s3"


@pytest.fixture(scope="module")
def store(tiny_model_dir, tmp_path_factory):
    """A store with two valid versions of `pricer` (errors 90 and 60) and one for another base."""
    adapters = tmp_path_factory.mktemp("llm-store") / "adapters"
    make_lora_adapter(tiny_model_dir, adapters, name="pricer", version=S1, mean_error=90.0)
    make_lora_adapter(tiny_model_dir, adapters, name="pricer", version=S2, mean_error=60.0)
    make_lora_adapter(tiny_model_dir, adapters, name="pricer", version=S3, mean_error=10.0, base_fingerprint="sha256:" + "0" * 64)
    return adapters


@pytest.fixture
def models_dir(store, tmp_path):
    """A fresh copy of the store's folder per test (the persisted state differs between tests)."""
    import shutil

    shutil.copytree(store, tmp_path / "adapters")
    return tmp_path


def _settings(tiny_model_dir, models_dir, **overrides):
    values = dict(models_dir=models_dir, default_adapter="pricer", adapter_policy="best", smoke_items=1)
    return tiny_engine_settings(tiny_model_dir, **(values | overrides))


async def _label(settings, pin=None) -> str:
    estimator = LlmEstimator(settings, pin, engine=RecordingEngine(), loop=asyncio.get_running_loop())
    try:
        await asyncio.to_thread(estimator.predict, make_items(2))
        return estimator.label
    finally:
        await asyncio.to_thread(estimator.close)


async def test_the_policy_picks_the_best_servable_version(tiny_model_dir, models_dir):
    settings = _settings(tiny_model_dir, models_dir)
    assert await _label(settings) == f"pricer@{S2}"  # S3 scores better but was trained on another base
    assert not state_path(models_dir).exists()  # the estimator reads the state, never writes it
    assert await _label(_settings(tiny_model_dir, models_dir, adapter_policy="latest")) == f"pricer@{S2}"


async def test_the_persisted_state_wins_as_in_the_service(tiny_model_dir, models_dir):
    save_active(models_dir, ("pricer", S1))
    before = state_path(models_dir).read_text()
    assert await _label(_settings(tiny_model_dir, models_dir)) == f"pricer@{S1}"
    assert state_path(models_dir).read_text() == before
    save_active(models_dir, None)  # the base model was active
    assert await _label(_settings(tiny_model_dir, models_dir)) == "base"
    assert json.loads(state_path(models_dir).read_text())["active"] is None


async def test_pins_resolve_like_a_request_pin(tiny_model_dir, models_dir):
    settings = _settings(tiny_model_dir, models_dir, default_adapter=None)
    assert await _label(settings) == "base"
    assert await _label(settings, "pricer") == f"pricer@{S2}"
    assert await _label(settings, f"pricer@{S1}") == f"pricer@{S1}"
    for pin, reason in [("nope", "no adapter named 'nope'"), ("pricer@19990101", "no adapter version"), (f"pricer@{S3}", "another base")]:
        with pytest.raises(AdapterNotFoundError, match=reason):
            await _label(settings, pin)


def test_a_version_folder_is_read_as_its_store_and_pin(tiny_model_dir, models_dir, tmp_path):
    settings = _settings(tiny_model_dir, tmp_path / "elsewhere")
    in_store, pin = store_pin(settings, str(models_dir / "adapters" / "pricer" / S1))
    assert (in_store.models_dir, pin) == (models_dir, f"pricer@{S1}")
    assert store_pin(settings, "pricer") == (settings, "pricer")
    with pytest.raises(AdapterNotFoundError, match="not an adapter folder"):
        store_pin(settings, str(tmp_path))
    with pytest.raises(ValueError):  # what `pricer evaluate` reports as a clean error
        create("llm", EstimatorOptions(settings=settings, adapter=str(tmp_path)))


@pytest.mark.vllm
async def test_prices_items_through_the_engine_with_the_resolved_adapter(vllm_engine, tmp_path):
    items = make_items(5, seed=2)
    folder = make_lora_adapter(vllm_engine.model_dir, tmp_path / "adapters", name="est", version=S1, weight_std=0.5)
    settings = vllm_engine.settings.model_copy(update={"models_dir": tmp_path, "default_adapter": "est", "smoke_items": 1})
    estimator = LlmEstimator(settings, engine=vllm_engine, loop=asyncio.get_running_loop(), batch_size=2)
    guesses = await asyncio.to_thread(estimator.predict, items)
    assert estimator.describe() == {"adapter": f"est@{S1}"}
    ref = AdapterRef("est", S1, folder, lora_id=9201)
    await vllm_engine.add_adapter(ref)
    try:
        direct = await vllm_engine.estimate([item.text for item in items], ref)
    finally:
        await vllm_engine.remove_adapter(ref)
    assert guesses == [e.price for e in direct]
    base = await vllm_engine.estimate([item.text for item in items])
    assert guesses != [e.price for e in base]
    await asyncio.to_thread(estimator.close)
    assert await vllm_engine.loaded_adapter_ids() == set()  # the estimator's manager unloaded what it loaded
    assert vllm_engine.ready  # a shared engine is not closed by the estimator
