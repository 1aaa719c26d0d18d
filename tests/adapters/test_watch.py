"""New versions arriving while running: the watcher sees them, the policy decides (engine double)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from app.adapters.manager import AdapterManager
from app.adapters.manifest import ADAPTER_WEIGHTS
from app.adapters.watcher import StoreWatcher
from tests.adapters.conftest import store_settings
from tests.adapters.engine_double import RecordingEngine
from tests.factories import make_lora_adapter

V1, V2, V3 = "20260101-000000-s10", "20260102-000000-s20", "20260103-000000-s30"


@pytest.fixture(scope="module")
def versions(tmp_path_factory, tiny_model_dir):
    """Adapters built once, outside any store, to be copied in: V2 better than V1, V3 worse."""
    root = tmp_path_factory.mktemp("built")
    make_lora_adapter(tiny_model_dir, root, "pa", V1, rank=4, seed=1, mean_error=100.0)
    make_lora_adapter(tiny_model_dir, root, "pa", V2, rank=4, seed=2, mean_error=80.0)
    make_lora_adapter(tiny_model_dir, root, "pa", V3, rank=4, seed=3, mean_error=150.0)
    return root


def publish(versions, adapters, version, name="pa"):
    """Copy a version in the way training writes one: under a hidden name, then rename."""
    tmp = adapters / name / f".{version}.tmp-test"
    shutil.copytree(versions / name / version, tmp)
    os.replace(tmp, adapters / name / version)


async def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def start(models_dir, base, engine, **overrides):
    overrides.setdefault("watch_adapters", True)
    overrides.setdefault("watch_poll_seconds", 0.2)
    manager = AdapterManager(store_settings(models_dir, base, **overrides), engine, base)
    await manager.start()
    return manager


@pytest.mark.parametrize("policy, expected", [("latest", V3), ("best", V2), ("manual", V1)])
async def test_policy_on_new_versions(models_dir, tiny_model_dir, versions, policy, expected):
    adapters = models_dir / "adapters"
    (adapters / "pa").mkdir()
    publish(versions, adapters, V1)
    engine = RecordingEngine()
    manager = await start(models_dir, tiny_model_dir, engine, adapter_policy=policy)
    assert manager.active.label == f"pa@{V1}"
    publish(versions, adapters, V2)
    assert await wait_for(lambda: len(manager.snapshot()) == 2)
    publish(versions, adapters, V3)
    assert await wait_for(lambda: len(manager.snapshot()) == 3)
    await manager.rescan()  # settle: the watcher's rescan may still be applying the policy
    assert manager.active.label == f"pa@{expected}"
    if policy == "best":  # the worse one was loaded (validated) but not activated
        statuses = {row["version"]: row["status"] for row in manager.snapshot()}
        assert statuses[V3] == "loaded" and statuses[V2] == "active"
    await manager.close()


async def test_faulty_new_version_keeps_previous(models_dir, tiny_model_dir, versions):
    adapters = models_dir / "adapters"
    (adapters / "pa").mkdir()
    publish(versions, adapters, V1)
    manager = await start(models_dir, tiny_model_dir, RecordingEngine(), adapter_policy="latest")
    bad = adapters / "pa" / f".{V2}.tmp"
    shutil.copytree(versions / "pa" / V2, bad)
    (bad / ADAPTER_WEIGHTS).write_bytes(b"corrupt")
    os.replace(bad, adapters / "pa" / V2)
    assert await wait_for(lambda: any(r["status"] == "rejected" for r in manager.snapshot()))
    assert manager.active.label == f"pa@{V1}"
    async with manager.lease(None) as ref:
        assert ref.label == f"pa@{V1}"
    await manager.close()


async def test_plain_copy_with_manifest_first_is_reexamined(models_dir, tiny_model_dir, versions):
    """`cp -r` may write the manifest before the weights: rejected at first, re-examined when the files change."""
    adapters = models_dir / "adapters"
    (adapters / "pa").mkdir()
    publish(versions, adapters, V1)
    manager = await start(models_dir, tiny_model_dir, RecordingEngine(), adapter_policy="latest", watch_adapters=False)
    target = adapters / "pa" / V2
    target.mkdir()
    for name in ("manifest.json", "adapter_config.json"):
        shutil.copy(versions / "pa" / V2 / name, target / name)
    await manager.rescan()
    assert {r["version"]: r["status"] for r in manager.snapshot()}[V2] == "rejected"
    shutil.copy(versions / "pa" / V2 / ADAPTER_WEIGHTS, target / ADAPTER_WEIGHTS)
    await manager.rescan()
    assert manager.active.label == f"pa@{V2}"
    await manager.close()


async def test_polling_fallback(tmp_path, monkeypatch):
    import watchfiles

    def broken(*args, **kwargs):
        raise OSError("inotify watch limit reached")

    monkeypatch.setattr(watchfiles, "awatch", broken)
    calls = []

    async def on_change():
        calls.append(time.monotonic())

    watcher = StoreWatcher(tmp_path, on_change, poll_seconds=0.05)
    await watcher.start()
    assert await wait_for(lambda: len(calls) >= 3, timeout=5)
    assert watcher.mode == "polling"
    await watcher.close()
