"""The `llm` estimator: adapter resolution against the store, and pricing through the real engine."""

from __future__ import annotations

import asyncio

import pytest

from app.engine.base import AdapterRef
from app.estimators.base import EstimatorOptions, create
from app.estimators.llm import AdapterNotFoundError, LlmEstimator, resolve_adapter
from tests.conftest import tiny_engine_settings
from tests.factories import make_items, make_lora_adapter


@pytest.fixture(scope="module")
def store(tiny_model_dir, tmp_path_factory):
    """A store with two valid versions of `pricer` (errors 90 and 60) and one for another base."""
    adapters = tmp_path_factory.mktemp("llm-store") / "adapters"
    make_lora_adapter(tiny_model_dir, adapters, name="pricer", version="20260101-000000-s1", mean_error=90.0)
    make_lora_adapter(tiny_model_dir, adapters, name="pricer", version="20260102-000000-s2", mean_error=60.0)
    make_lora_adapter(
        tiny_model_dir, adapters, name="pricer", version="20260103-000000-s3", mean_error=10.0,
        base_fingerprint="sha256:" + "0" * 64,
    )
    return adapters


def _settings(tiny_model_dir, store, **overrides):
    return tiny_engine_settings(tiny_model_dir, models_dir=store.parent, **overrides)


def test_default_adapter_is_the_best_servable_version(tiny_model_dir, store):
    ref = resolve_adapter(_settings(tiny_model_dir, store, default_adapter="pricer"), None)
    assert ref.label == "pricer@20260102-000000-s2"  # s3 scores better but was trained on another base


def test_pins_folders_and_the_base(tiny_model_dir, store):
    settings = _settings(tiny_model_dir, store)
    assert resolve_adapter(settings, "pricer").version == "20260102-000000-s2"
    assert resolve_adapter(settings, "pricer@20260101-000000-s1").version == "20260101-000000-s1"
    folder = store / "pricer" / "20260101-000000-s1"
    assert resolve_adapter(settings, str(folder)).path == folder.resolve()
    assert resolve_adapter(settings, None) is None  # no default adapter: the base model
    assert resolve_adapter(_settings(tiny_model_dir, store, default_adapter="absent"), None) is None


def test_unknown_or_rejected_adapters_are_clear_errors(tiny_model_dir, store, tmp_path):
    settings = _settings(tiny_model_dir, store)
    with pytest.raises(AdapterNotFoundError, match="no servable version of adapter 'nope'"):
        resolve_adapter(settings, "nope")
    with pytest.raises(AdapterNotFoundError, match="no adapter version pricer@19990101"):
        resolve_adapter(settings, "pricer@19990101")
    with pytest.raises(AdapterNotFoundError, match="another base"):
        resolve_adapter(settings, "pricer@20260103-000000-s3")
    with pytest.raises(AdapterNotFoundError, match="not an adapter folder"):
        resolve_adapter(settings, str(tmp_path))
    with pytest.raises(ValueError):  # what `pricer evaluate` reports as a clean error
        create("llm", EstimatorOptions(settings=settings, adapter="nope"))


@pytest.mark.vllm
async def test_prices_items_through_the_engine_with_an_adapter(vllm_engine, tmp_path):
    items = make_items(5, seed=2)
    folder = make_lora_adapter(vllm_engine.model_dir, tmp_path, name="est", version="v1", weight_std=0.5)
    ref = AdapterRef("est", "v1", folder, lora_id=201)
    estimator = LlmEstimator(vllm_engine.settings, ref, engine=vllm_engine, loop=asyncio.get_running_loop(), batch_size=2)
    guesses = await asyncio.to_thread(estimator.predict, items)
    direct = await vllm_engine.estimate([item.text for item in items], ref)
    assert guesses == [e.price for e in direct]
    base = await vllm_engine.estimate([item.text for item in items])
    assert guesses != [e.price for e in base]
    await asyncio.to_thread(estimator.close)
    assert 201 not in await vllm_engine.loaded_adapter_ids()
    assert vllm_engine.ready  # a shared engine is not closed by the estimator
