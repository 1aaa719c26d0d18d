"""Adapter hot-loading on the merged, compiled path (PRICER_ADAPTER_MODE=merged, app/engine/merged.py)
through the whole service: the real vLLM without LoRA (compiled) on the tiny random Llama, the
adapter manager unchanged above it. The same bars as LoRA hot-loading (tests/e2e/test_hotload.py):
a new version activated while serving, a pin to another version and a rollback (each an in-place
swap, same answers as before), a corrupt version and one whose shapes do not fit refused while the
previous one serves on, and swaps under concurrent load with no failed or mislabelled request."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.test_hotload import (ADMIN, NAME, V1, V2, V3, _corrupt, estimate, four_swaps_under_load_fail_nothing, hot_service,
                                    listing, publish, statuses, wait_until)
from tests.factories import make_lora_adapter

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def versions(tmp_path_factory, tiny_model_dir, tokenizer_dir):
    """V1, V2 (better), V3 (worse), and a V2 made for a wider base but claiming the served one."""
    from app.store.base import fingerprint
    from tests.tiny_model import build_tiny_llama

    root = tmp_path_factory.mktemp("merged-built")
    make_lora_adapter(tiny_model_dir, root, NAME, V1, rank=8, seed=1, weight_std=0.5, mean_error=100.0)
    make_lora_adapter(tiny_model_dir, root, NAME, V2, rank=8, seed=2, weight_std=0.5, mean_error=80.0)
    make_lora_adapter(tiny_model_dir, root, NAME, V3, rank=8, seed=3, weight_std=0.5, mean_error=150.0)
    wider = build_tiny_llama(root / "wider" / "tiny", tokenizer_dir, seed=7, hidden=256)
    make_lora_adapter(wider, root / "shapes", NAME, V2, rank=8, seed=5, base_fingerprint=fingerprint(tiny_model_dir))
    return root


def merged_service(engine, base, models_dir, **overrides):
    return hot_service(engine, base, models_dir, adapter_mode="merged", **overrides)


async def test_activation_pin_and_rollback_swap_in_place(merged_engine, tiny_model_dir, versions, tmp_path):
    publish(versions / NAME / V1, tmp_path)
    async with merged_service(merged_engine, tiny_model_dir, tmp_path) as client:
        first = await estimate(client)
        assert first["adapter"] == f"{NAME}@{V1}"
        publish(versions / NAME / V2, tmp_path)  # arrives while serving: merged, smoke-checked, activated

        async def switched():
            return (await listing(client))["active"] == f"{NAME}@{V2}"

        assert await wait_until(switched, timeout=120)
        second = await estimate(client)
        assert second["adapter"] == f"{NAME}@{V2}"
        assert (second["price"], second["low"]) != (first["price"], first["low"])

        pinned = await estimate(client, adapter=f"{NAME}@{V1}")  # swaps to V1 and back
        assert pinned["adapter"] == f"{NAME}@{V1}" and pinned["price"] == first["price"]
        assert (await estimate(client))["price"] == second["price"]

        rolled = await client.post(f"/v1/adapters/{NAME}/{V1}/activate", headers=ADMIN)
        assert rolled.status_code == 200, rolled.text
        again = await estimate(client)
        assert again["adapter"] == f"{NAME}@{V1}"
        assert again["price"] == first["price"] and again["low"] == first["low"] and again["high"] == first["high"]

    async with merged_service(merged_engine, tiny_model_dir, tmp_path) as client:  # restart: the rollback persists
        assert (await listing(client))["active"] == f"{NAME}@{V1}"
        assert (await estimate(client))["price"] == first["price"]
    assert merged_engine.ready


@pytest.mark.parametrize("fault", ["corrupt weights", "shapes that do not fit the base"])
async def test_a_faulty_version_is_refused_and_the_previous_serves_on(merged_engine, tiny_model_dir, versions, tmp_path, fault):
    publish(versions / NAME / V1, tmp_path)
    async with merged_service(merged_engine, tiny_model_dir, tmp_path) as client:
        before = await estimate(client)
        staged = tmp_path / "staged" / V2
        if fault == "corrupt weights":
            shutil.copytree(versions / NAME / V2, staged)
            _corrupt(staged)
            reason = "not complete safetensors"  # the static checks, before the engine
        else:
            shutil.copytree(versions / "shapes" / NAME / V2, staged)
            reason = "the engine refused it: cannot merge"  # only the merge finds it
        publish(staged, tmp_path, V2)

        async def rejected():
            return (await statuses(client)).get(V2) == "rejected"

        assert await wait_until(rejected, timeout=120)
        row = next(r for r in (await listing(client))["adapters"] if r["version"] == V2)
        assert reason in row["reason"]
        forced = await client.post(f"/v1/adapters/{NAME}/{V2}/activate", headers=ADMIN)
        assert forced.status_code == 409
        after = await estimate(client)
        assert after["adapter"] == f"{NAME}@{V1}" and after["price"] == before["price"]
    assert merged_engine.ready


async def test_swaps_under_load_fail_no_request(merged_engine, tiny_model_dir, versions, tmp_path):
    for version in (V1, V2, V3):
        publish(versions / NAME / version, tmp_path)
    async with merged_service(merged_engine, tiny_model_dir, tmp_path, adapter_policy="manual", watch_adapters=False,
                              keep_loaded=1) as client:
        activated = await client.post(f"/v1/adapters/{NAME}/{V1}/activate", headers=ADMIN)
        assert activated.status_code == 200, activated.text
        # keep_loaded=1: every activation merges (or reuses the merge), smoke-checks the candidate (a swap
        # while requests for the active version wait), then switches, while requests keep coming.
        await four_swaps_under_load_fail_nothing(client)
    assert merged_engine.ready
