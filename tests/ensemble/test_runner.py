"""app/ensemble/runner.py: concurrent requests for a member share one predict call; a failing request
is left out alone (the others are predicted again without it); the gather wait joins late requests;
a timed-out request is skipped; the call runs inside the requests' deadline."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.ensemble.runner import MAX_BATCH, MemberLeftOut, MemberRunner
from app.runtime.microbatch import time_left
from tests.factories import make_items

ITEMS = make_items(12, seed=3)


class Estimator:
    """Prices an item at its index in ITEMS + 1; raises on a batch holding a "bad" item."""

    def __init__(self, sleep_s: float = 0.0):
        self.batches: list[list[int]] = []
        self.sleep_s = sleep_s
        self.deadlines: list[float | None] = []
        self.gate = threading.Event()
        self.gate.set()

    def predict(self, items):
        self.gate.wait(10)
        self.batches.append([ITEMS.index(i) if i in ITEMS else -1 for i in items])
        self.deadlines.append(time_left())
        time.sleep(self.sleep_s)
        if any(i.title == "bad" for i in items):
            raise ValueError("cannot price a bad item")
        return [float(ITEMS.index(i) + 1) for i in items]


BAD = ITEMS[0].model_copy(update={"title": "bad"})


async def test_concurrent_requests_share_one_predict_and_get_their_own_prices():
    estimator = Estimator()
    estimator.gate.clear()  # the first call waits, so the others queue behind it
    runner = MemberRunner("m", estimator)
    first = asyncio.create_task(runner.predict(ITEMS[:1], 5))
    await asyncio.sleep(0.05)
    rest = [runner.predict(ITEMS[i:i + 2], 5) for i in (1, 3, 5)]
    estimator.gate.set()
    results = await asyncio.gather(first, *rest)
    assert results == [[1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    assert estimator.batches == [[0], [1, 2, 3, 4, 5, 6]]
    await runner.close()


async def test_a_failing_request_fails_alone():
    estimator = Estimator()
    estimator.gate.clear()
    runner = MemberRunner("m", estimator)
    first = asyncio.create_task(runner.predict(ITEMS[:1], 5))
    await asyncio.sleep(0.05)
    calls = [runner.predict(ITEMS[1:3], 5), runner.predict([ITEMS[3], BAD], 5), runner.predict(ITEMS[4:5], 5)]
    estimator.gate.set()
    results = await asyncio.gather(first, *calls, return_exceptions=True)
    assert results[0] == [1.0] and results[1] == [2.0, 3.0] and results[3] == [5.0]
    assert isinstance(results[2], MemberLeftOut) and results[2].reason == "error"
    assert estimator.batches == [[0], [1, 2, 3, -1, 4], [1, 2], [3, -1], [4]]  # the batch, then each alone
    await runner.close()


async def test_the_gather_wait_joins_a_late_request():
    estimator = Estimator()
    runner = MemberRunner("m", estimator, gather_s=0.5)
    late = asyncio.create_task(asyncio.sleep(0.05))
    first = asyncio.create_task(runner.predict(ITEMS[:1], 5))
    await late
    second = await runner.predict(ITEMS[1:2], 5)
    assert await first == [1.0] and second == [2.0]
    assert estimator.batches == [[0, 1]]
    await runner.close()


async def test_a_full_batch_ends_the_gather_wait():
    estimator = Estimator()
    runner = MemberRunner("m", estimator, gather_s=10.0)
    items = (ITEMS * 6)[:MAX_BATCH]
    started = time.monotonic()
    assert len(await runner.predict(items, 20)) == MAX_BATCH
    assert time.monotonic() - started < 5.0
    await runner.close()


async def test_a_timed_out_request_is_skipped_and_the_call_has_the_deadline():
    estimator = Estimator()
    estimator.gate.clear()
    runner = MemberRunner("m", estimator)
    first = asyncio.create_task(runner.predict(ITEMS[:1], 5))
    await asyncio.sleep(0.05)
    with pytest.raises(MemberLeftOut) as left:
        await runner.predict(ITEMS[1:2], 0.05)
    assert left.value.reason == "timeout"
    estimator.gate.set()
    assert await first == [1.0]
    assert await runner.predict(ITEMS[2:3], 3) == [3.0]
    assert estimator.batches == [[0], [2]]
    assert 0 < estimator.deadlines[-1] <= 3.0  # the shared embedding worker bounds its wait by this
    await runner.close()


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="needs two CPUs to choose one")
async def test_a_placed_member_computes_on_its_cores_only():
    """PRICER_MEMBER_CORES: the member's calls run on the placement's cores (app.engine.cpu_binding)."""
    import os

    from app.engine.cpu_binding import Placement

    class Where(Estimator):
        def predict(self, items):
            self.seen = os.sched_getaffinity(0)
            return super().predict(items)

    one = min(os.sched_getaffinity(0))
    placed, free = Where(), Where()
    await MemberRunner("placed", placed, placement=Placement(frozenset({one}), 1, "test")).predict(ITEMS[:2], 5)
    await MemberRunner("free", free).predict(ITEMS[:2], 5)
    assert placed.seen == {one} and free.seen == os.sched_getaffinity(0)
