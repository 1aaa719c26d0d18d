"""The pricing actor's own logic around the core (a stand-in core: what is tested here is how
chunks are scheduled and how a failing chunk is split, not pricing): `inflight` chunks at once, a
chunk that fails is retried item by item so only the failing item is an error, a dead engine is
raised for Ray to restart the worker."""

from __future__ import annotations

import asyncio

import pytest

from app.batch.actor import PricingActor
from app.engine.base import EngineDeadError


class Core:
    def __init__(self, poison: str = "", dead: str = ""):
        self.poison, self.dead, self.now, self.most, self.calls = poison, dead, 0, 0, []

    async def price_many(self, bodies, texts):
        assert texts == [f"text of {b}" for b in bodies]  # each item's text, built once by the actor
        self.calls.append(list(bodies))
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)
            if self.dead in bodies:
                raise EngineDeadError("the engine core died")
            if self.poison in bodies:
                raise ValueError(f"cannot price {self.poison}")
            return [f"${b}" for b in bodies]
        finally:
            self.now -= 1


class Stack:
    def run(self, function, *args):
        return asyncio.run(function(*args))

    def close(self) -> None:
        pass


def chunked(*chunks: list[str]) -> list[tuple[list[str], list[str]]]:
    """Chunks of (item fields, their texts), as the actor builds them."""
    return [(bodies, [f"text of {b}" for b in bodies]) for bodies in chunks]


def actor(core: Core, inflight: int) -> PricingActor:
    worker = object.__new__(PricingActor)  # no engine: __init__ loads the serving stack
    worker.core, worker.stack, worker.inflight = core, Stack(), inflight
    return worker


def test_chunks_are_priced_inflight_at_once_and_in_order():
    core = Core()
    chunks = chunked(*([f"a{i}", f"b{i}"] for i in range(5)))
    assert actor(core, inflight=2).price_chunks(chunks) == [[f"$a{i}", f"$b{i}"] for i in range(5)]
    assert core.most == 2


def test_a_failing_chunk_is_retried_item_by_item_and_only_its_bad_item_is_an_error():
    core = Core(poison="b1")
    results = actor(core, inflight=3).price_chunks(chunked(["a0", "b0"], ["a1", "b1"], ["a2"]))
    assert results[0] == ["$a0", "$b0"] and results[2] == ["$a2"]
    assert results[1][0] == "$a1" and results[1][1] == "ValueError: cannot price b1"
    assert ["a1"] in core.calls and ["b1"] in core.calls


def test_a_dead_engine_is_raised_not_turned_into_errors():
    with pytest.raises(EngineDeadError):
        actor(Core(dead="x"), inflight=2).price_chunks(chunked(["a"], ["x"]))


def test_no_chunks_no_calls():
    core = Core()
    assert actor(core, inflight=2).price_chunks([]) == []
    assert core.calls == []
