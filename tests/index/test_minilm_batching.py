"""app/index/minilm.py through its embedding worker (app/runtime/microbatch.py): concurrent callers
share one encode call and get the same vectors as one call would give, long lists bypass the worker,
a caller's deadline holds, and the worker runs on the cores PRICER_EMBED_CORES names. The last tests
load the real MiniLM and torch: run them under the heavy-job lock."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.index import minilm
from app.runtime.microbatch import deadline_scope


@pytest.fixture
def worker(monkeypatch):
    """A fresh embedding worker from these settings (goes when 8 texts wait, or after 5 s)."""
    monkeypatch.setenv("PRICER_EMBED_BATCH_MAX", "8")
    monkeypatch.setenv("PRICER_EMBED_BATCH_WAIT_MS", "5000")
    monkeypatch.setenv("PRICER_EMBED_CORES", "none")
    monkeypatch.delenv("PRICER_VECTOR_CACHE", raising=False)
    monkeypatch.setattr(minilm, "_CACHE", OrderedDict())
    minilm.reset_batcher()
    yield
    minilm.reset_batcher()


@pytest.fixture
def fake(monkeypatch):
    """A counting stand-in for the model: a text's vector is [len(text), 1]."""

    class Counting:
        calls: list[tuple[list[str], bool]] = []
        gate = threading.Event()

        def encode(self, texts, show_progress_bar=False, **kwargs):
            self.gate.wait(10)
            self.calls.append((list(texts), show_progress_bar))
            return np.array([[float(len(t)), 1.0] for t in texts])

    Counting.gate.set()
    model = Counting()
    monkeypatch.setattr(minilm, "load_embedder", lambda: model)
    return model


def together(calls):
    barrier = threading.Barrier(len(calls))

    def one(texts):
        barrier.wait()
        return minilm.embed(texts)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def test_concurrent_callers_share_one_encode_call(worker, fake):
    calls = [["a", "bb"], ["ccc", "a"], ["dddd"], ["ee", "fffff", "g"]]  # 8 texts, "a" twice
    results = together(calls)
    for texts, vectors in zip(calls, results, strict=True):
        assert vectors[:, 0].tolist() == [float(len(t)) for t in texts]
    assert len(fake.calls) == 1
    assert sorted(fake.calls[0][0]) == ["a", "bb", "ccc", "dddd", "ee", "fffff", "g"]  # "a" encoded once


def test_a_long_list_bypasses_the_worker_with_its_progress_bar(worker, fake):
    texts = [f"text {i}" for i in range(300)]
    assert minilm.embed(texts).shape == (300, 2)
    assert fake.calls == [(texts, True)]
    assert minilm._batcher().calls == 0


def test_cached_texts_never_reach_the_worker(worker, fake):
    minilm.embed([f"t{i}" for i in range(9)])  # 9 > 8: directly, and cached
    assert minilm.embed(["t1", "t2"]).shape == (2, 2)
    assert len(fake.calls) == 1 and minilm._batcher().calls == 0


def test_a_caller_never_waits_past_its_deadline(worker, fake, monkeypatch):
    monkeypatch.setenv("PRICER_EMBED_BATCH_WAIT_MS", "0")
    minilm.reset_batcher()
    fake.gate.clear()  # the model is stuck
    with pytest.raises(TimeoutError):
        minilm.embed(["slow"], timeout_s=0.05)
    with deadline_scope(0.05), pytest.raises(TimeoutError):  # a member's deadline, carried by its thread
        minilm.embed(["slower"])
    fake.gate.set()


def test_batching_off_embeds_in_the_caller(worker, fake, monkeypatch):
    monkeypatch.setenv("PRICER_EMBED_BATCH_MAX", "0")
    minilm.reset_batcher()
    assert minilm.embed(["x"]).shape == (1, 2)
    assert minilm._batcher() is None and fake.calls == [(["x"], False)]


def test_the_worker_is_pinned_where_the_settings_say(worker, fake, monkeypatch):
    from app.runtime import threads

    pinned = []
    monkeypatch.setattr(threads, "pin_this_thread", lambda cpus, n: pinned.append((cpus, n)) or True)
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("one CPU: nothing to pin to")
    monkeypatch.setenv("PRICER_EMBED_CORES", str(allowed[-1]))
    minilm.reset_batcher()
    minilm.embed(["pin me"])
    assert pinned == [({allowed[-1]}, 1)]


# --- The real MiniLM and torch (under the heavy-job lock)


TEXTS = [f"{kind} number {i}, {size} inch" for i, (kind, size) in
         enumerate([("USB cable", 3), ("espresso machine", 12), ("garden hose", 50), ("desk lamp", 18)] * 3)]


def test_concurrent_embeddings_are_the_vectors_of_one_call(monkeypatch):
    monkeypatch.delenv("PRICER_VECTOR_CACHE", raising=False)
    monkeypatch.setenv("PRICER_EMBED_BATCH_WAIT_MS", "50")
    monkeypatch.setattr(minilm, "_CACHE", OrderedDict())
    minilm.reset_batcher()
    alone = minilm.load_embedder().encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    results = together([TEXTS[i:i + 3] for i in range(0, len(TEXTS), 3)])
    assert minilm._batcher().calls < 4
    np.testing.assert_allclose(np.concatenate(results), alone, atol=1e-5)
    minilm.reset_batcher()


def test_the_pinned_worker_has_its_own_torch_threads_and_cores(monkeypatch):
    """On the cores vLLM leaves (CPU 1 of two), one torch thread; the rest of the process unchanged."""
    import torch

    from app.engine.cpu_binding import cpus_vllm_leaves

    free = cpus_vllm_leaves()
    if free is None:
        pytest.skip("no core free of vLLM here (one CPU)")
    monkeypatch.setenv("PRICER_EMBED_CORES", "auto")
    monkeypatch.setenv("PRICER_DEVICE", "cpu")
    monkeypatch.setenv("PRICER_ENGINE", "vllm")
    monkeypatch.setattr(minilm, "_CACHE", OrderedDict())
    minilm.reset_batcher()
    seen = {}
    real = minilm._encode_batch

    def probe(texts):
        seen["cpus"], seen["threads"] = os.sched_getaffinity(0), torch.get_num_threads()
        return real(texts)

    monkeypatch.setattr(minilm, "_encode_batch", probe)
    minilm.reset_batcher()
    before = torch.get_num_threads(), os.sched_getaffinity(0)
    minilm.embed(["a lamp"])
    assert seen == {"cpus": set(free.cpus), "threads": free.threads}
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before
    fresh = {}
    thread = threading.Thread(target=lambda: fresh.setdefault("n", torch.get_num_threads()))
    thread.start()
    thread.join()
    assert fresh["n"] == before[0]  # threads started later keep the process's default
    minilm.reset_batcher()
