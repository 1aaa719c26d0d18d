"""The manager's bookkeeping: activation, leases, pins, eviction, persistence (engine double)."""

from __future__ import annotations

import asyncio

import pytest

from app.adapters.manager import (
    AdapterManager,
    AdapterUnavailableError,
    UnknownAdapterError,
)
from app.adapters.state import load_active
from tests.adapters.conftest import V1, V2, store_settings
from tests.adapters.engine_double import RecordingEngine

V3 = "20260103-000000-s30"


async def started(models_dir, base, engine=None, **overrides):
    manager = AdapterManager(store_settings(models_dir, base, **overrides), engine or RecordingEngine(), base)
    await manager.start()
    return manager


async def test_start_activates_by_policy(models_dir, tiny_model_dir, store):
    latest = await started(models_dir, tiny_model_dir, adapter_policy="latest")
    assert latest.active.label == f"pa@{V2}"
    await latest.close()
    (models_dir / ".pricer-state.json").unlink()
    best = await started(models_dir, tiny_model_dir, adapter_policy="best")
    assert best.active.label == f"pa@{V1}"  # lower validation mean error
    statuses = {row["version"]: row["status"] for row in best.snapshot()}
    assert statuses == {V1: "active", V2: "available"}
    await best.close()


async def test_restart_restores_persisted_active_not_newest(models_dir, tiny_model_dir, store):
    manager = await started(models_dir, tiny_model_dir)
    await manager.activate("pa", V1)
    assert load_active(models_dir) == ("pa", V1)
    await manager.close()
    again = await started(models_dir, tiny_model_dir)
    assert again.active.label == f"pa@{V1}"
    await again.close()


async def test_no_default_serves_base(models_dir, tiny_model_dir, store):
    manager = await started(models_dir, tiny_model_dir, default_adapter=None)
    assert manager.active is None
    async with manager.lease(None) as ref:
        assert ref is None
    await manager.close()


async def test_lease_pins(models_dir, tiny_model_dir, store):
    engine = RecordingEngine()
    manager = await started(models_dir, tiny_model_dir, engine=engine)
    async with manager.lease("pa") as ref:
        assert ref == manager.active
    async with manager.lease(f"pa@{V1}") as ref:
        assert ref.label == f"pa@{V1}" and ref.lora_id in engine.loaded
    with pytest.raises(UnknownAdapterError):
        async with manager.lease("nope"):
            pass
    with pytest.raises(UnknownAdapterError):
        async with manager.lease("pa@20990101-000000-s1"):
            pass
    await manager.close()
    assert engine.loaded == {}


async def test_swap_waits_for_leases_and_uses_fresh_ids(models_dir, tiny_model_dir, store):
    engine = RecordingEngine()
    manager = await started(models_dir, tiny_model_dir, engine=engine, keep_loaded=1)
    old = manager.active
    async with manager.lease(None) as ref:
        assert ref == old
        await manager.activate("pa", V1)
        await asyncio.sleep(0.01)
        assert old.lora_id in engine.loaded  # the running request still has its version
        assert manager.active.label == f"pa@{V1}"
    await asyncio.sleep(0.01)
    assert old.lora_id not in engine.loaded  # keep_loaded=1: unloaded after its last lease
    await manager.activate("pa", V2)  # rollback loads it again under a new id
    assert manager.active.lora_id != old.lora_id
    assert load_active(models_dir) == ("pa", V2)
    await manager.close()


async def test_keep_loaded_for_rollback(models_dir, tiny_model_dir, store):
    engine = RecordingEngine()
    manager = await started(models_dir, tiny_model_dir, engine=engine, keep_loaded=2)
    await manager.activate("pa", V1)
    await asyncio.sleep(0.01)
    assert engine.loaded_labels() == {f"pa@{V1}", f"pa@{V2}"}
    statuses = {row["version"]: row["status"] for row in manager.snapshot()}
    assert statuses == {V1: "active", V2: "loaded"}
    await manager.unload("pa", V2)
    assert engine.loaded_labels() == {f"pa@{V1}"}
    with pytest.raises(AdapterUnavailableError):
        await manager.unload("pa", V1)  # the active one
    await manager.close()


async def test_two_activations_at_once_serialize(models_dir, tiny_model_dir, store):
    engine = RecordingEngine(delay=0.05)
    manager = await started(models_dir, tiny_model_dir, engine=engine, keep_loaded=1)
    results = await asyncio.gather(manager.activate("pa", V1), manager.activate("pa", V2))
    assert [r["version"] for r in results] == [V1, V2]
    await asyncio.sleep(0.2)
    assert manager.active.label == f"pa@{V2}"
    assert load_active(models_dir) == ("pa", V2)
    assert engine.loaded_labels() == {f"pa@{V2}"}
    await manager.close()


async def test_engine_refusal_keeps_previous(models_dir, tiny_model_dir, store):
    engine = RecordingEngine()
    engine.refuse.add(f"pa@{V1}")
    manager = await started(models_dir, tiny_model_dir, engine=engine)
    before = manager.active
    with pytest.raises(AdapterUnavailableError, match="refused"):
        await manager.activate("pa", V1)
    assert manager.active == before
    row = next(r for r in manager.snapshot() if r["version"] == V1)
    assert row["status"] == "rejected" and "refused" in row["reason"]
    await manager.close()


async def test_smoke_check_rejects_nan_prices(models_dir, tiny_model_dir, store):
    engine = RecordingEngine()
    engine.nan_for.add(f"pa@{V1}")
    manager = await started(models_dir, tiny_model_dir, engine=engine)
    with pytest.raises(AdapterUnavailableError, match="smoke"):
        await manager.activate("pa", V1)
    assert manager.active.label == f"pa@{V2}"
    assert f"pa@{V1}" not in engine.loaded_labels()
    await manager.close()


async def test_a_version_trained_under_another_prompt_is_rejected_with_that_reason(models_dir, tiny_model_dir, store):
    from tests.factories import make_lora_adapter

    make_lora_adapter(tiny_model_dir, store, "pa", V3, rank=4, seed=3, mean_error=1.0, prompt_hash="sha256:" + "e" * 64)
    manager = await started(models_dir, tiny_model_dir, adapter_policy="best")
    row = next(r for r in manager.snapshot() if r["version"] == V3)
    assert row["status"] == "rejected" and "trained under another prompt" in row["reason"]
    assert manager.active.label == f"pa@{V1}"  # the best of the others, although V3 claims the lowest error
    with pytest.raises(AdapterUnavailableError, match="another prompt"):
        await manager.activate("pa", V3)
    await manager.close()


async def test_a_retrieval_augmented_version_is_served_in_its_format_only_with_an_index(models_dir, tiny_model_dir, store):
    """A version trained with 5 comparables: rejected (and the others served) without an index;
    with one, its engine reference says 5, so the engine builds its prompts with 5 neighbours."""
    from types import SimpleNamespace

    from app.model.spec import prompt_hash_for
    from tests.factories import make_lora_adapter

    make_lora_adapter(tiny_model_dir, store, "pa", V3, rank=4, seed=3, mean_error=0.5, prompt_hash=prompt_hash_for(5))
    without = await started(models_dir, tiny_model_dir, adapter_policy="best")
    row = next(r for r in without.snapshot() if r["version"] == V3)
    assert row["status"] == "rejected" and "no comparables index" in row["reason"]
    assert without.active.label == f"pa@{V1}" and without.active.comparables == 0
    await without.close()
    (models_dir / ".pricer-state.json").unlink()

    engine = RecordingEngine()
    engine.spec = SimpleNamespace(index=object(), point_rule=None)  # the index: what the service attaches at start-up
    with_index = await started(models_dir, tiny_model_dir, engine=engine, adapter_policy="best")
    assert with_index.active.label == f"pa@{V3}" and with_index.active.comparables == 5
    assert next(r for r in with_index.snapshot() if r["version"] == V3)["comparables"] == 5
    await with_index.close()
