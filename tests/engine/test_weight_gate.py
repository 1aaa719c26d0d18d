"""WeightGate (app/engine/weight_gate.py) on its own: requests for the loaded weights run together, a
request for other weights waits until the running ones finish, nothing starts while a swap is
pending, cancelled waiters leave no trace, and a failed load fails only its own waiters."""

from __future__ import annotations

import asyncio

import pytest

from app.engine.weight_gate import UNKNOWN, WeightGate


class Engine:
    """Records what ran on which weights; a load takes `load_s` and may be told to fail."""

    def __init__(self, load_s: float = 0.01):
        self.load_s, self.fail = load_s, set()
        self.loads: list = []
        self.weights = None
        self.events: list = []
        self.gate = WeightGate(self.load, loaded=None)

    async def load(self, key):
        assert self.gate.running == 0, "weights loaded under a running request"
        self.loads.append(key)
        await asyncio.sleep(self.load_s)
        if key in self.fail:
            raise RuntimeError(f"cannot load {key}")
        self.weights = key

    async def request(self, key, seconds: float = 0.02):
        async with self.gate.use(key):
            assert self.weights == key
            self.events.append(("start", key))
            await asyncio.sleep(seconds)
            assert self.weights == key, "weights changed under a running request"
            self.events.append(("end", key))
        return key


async def test_requests_for_the_loaded_weights_run_together_without_a_swap():
    engine = Engine()
    await asyncio.gather(*(engine.request(None) for _ in range(5)))
    assert engine.loads == []
    assert [e for e, _ in engine.events[:5]] == ["start"] * 5


async def test_a_swap_waits_for_running_requests_and_blocks_new_ones():
    engine = Engine()
    first = asyncio.create_task(engine.request(None, 0.1))
    await asyncio.sleep(0.01)
    wants_a = asyncio.create_task(engine.request("a"))
    await asyncio.sleep(0.01)
    late_base = asyncio.create_task(engine.request(None))  # behind the pending swap, not beside `first`
    assert await asyncio.gather(first, wants_a, late_base) == [None, "a", None]
    assert engine.loads == ["a", None]
    assert engine.events == [("start", None), ("end", None), ("start", "a"), ("end", "a"), ("start", None), ("end", None)]
    assert engine.gate.running == 0 and engine.gate.waiting == 0


async def test_all_waiters_for_the_same_weights_run_after_one_load():
    engine = Engine()
    results = await asyncio.gather(*(engine.request(k) for k in ["a", "b", "a", "b", "a"]))
    assert results == ["a", "b", "a", "b", "a"]
    assert engine.loads == ["a", "b"]  # keys in the order first asked for, each loaded once


async def test_a_failed_load_fails_its_waiters_only_and_the_next_request_loads_again():
    engine = Engine()
    engine.fail.add("bad")
    results = await asyncio.gather(engine.request("bad"), engine.request("bad"), engine.request("a"),
                                   return_exceptions=True)
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert results[2] == "a"
    engine.fail.clear()
    engine.loads.clear()
    engine.gate.loaded = UNKNOWN  # as after a failed load: even the weights it last had are reloaded
    assert await engine.request("a") == "a"
    assert engine.loads == ["a"]


async def test_a_cancelled_waiter_leaves_no_trace():
    engine = Engine(load_s=0.05)
    running = asyncio.create_task(engine.request(None, 0.1))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(engine.request("a"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await running
    assert engine.gate.waiting == 0 and engine.gate.running == 0
    assert engine.loads == []  # nobody waits for "a" any more: not loaded
    assert await engine.request(None) is None


async def test_a_waiter_cancelled_during_the_load_does_not_stop_it_for_the_others():
    engine = Engine(load_s=0.1)
    one, two = asyncio.create_task(engine.request("a")), asyncio.create_task(engine.request("a"))
    await asyncio.sleep(0.03)  # the load is under way
    one.cancel()
    assert await two == "a"
    with pytest.raises(asyncio.CancelledError):
        await one
    assert engine.loads == ["a"] and engine.gate.running == 0
