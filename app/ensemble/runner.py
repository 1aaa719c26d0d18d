"""One saved member at serving time: requests that arrive together are priced in one call, in one
worker thread, so that sixteen concurrent requests cost one `predict` of sixteen items rather than
sixteen threads fighting over the CPU. With a gather wait (PRICER_MEMBER_GATHER_MS) the worker waits that
long from the first waiting request's arrival for others to join (none once MAX_BATCH items wait).
When a batched call fails, each request's items are predicted again on their own, so that one bad
request leaves the member out of its own answer only. Each call runs inside the latest deadline of
its requests (app.runtime.microbatch.deadline_scope), which the shared embedding worker honours,
and, with a placement (PRICER_MEMBER_CORES), on the cores it names with one torch thread per core:
torch's default threads on every core would fight vLLM's compute thread for its core.

`MemberRunner.predict(items, timeout_s)` gives the member's prices for those items, or raises
`MemberLeftOut` (reason "timeout" or "error") so that the caller leaves the member out of that
answer. Latency (queueing included) goes to the member latency histogram.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from app.ensemble import metrics
from app.model.items import Item
from app.runtime.microbatch import deadline_scope
from app.runtime.threads import on_cpus

log = logging.getLogger("pricer.ensemble")

MAX_BATCH = 64  # items per predict call; more wait for the next call


@dataclass(eq=False)
class _Waiting:
    items: list[Item]
    future: asyncio.Future
    arrived: float  # time.monotonic()
    deadline: float


class MemberLeftOut(Exception):
    """A member gave no usable answer for this request; `reason` is a bounded metrics label."""

    def __init__(self, member: str, reason: str, detail: str = ""):
        super().__init__(f"member {member!r} left out ({reason}){': ' + detail if detail else ''}")
        self.member, self.reason, self.detail = member, reason, detail


def observe(member: str, seconds: float) -> None:
    metrics.MEMBER_DURATION.labels(member).observe(seconds)


def left_out(member: str, reason: str, detail: str = "") -> MemberLeftOut:
    """Count and log a member left out of an answer, and return the exception that says so."""
    metrics.MEMBER_LEFT_OUT.labels(member, reason).inc()
    log.warning("ensemble member %s left out of an answer: %s %s", member, reason, detail)
    return MemberLeftOut(member, reason, detail)


class MemberRunner:
    """Micro-batches concurrent requests for one saved estimator (sync, CPU) into a worker thread."""

    def __init__(self, name: str, estimator, gather_s: float = 0.0, placement=None):
        self.name = name
        self.estimator = estimator
        self.gather_s = gather_s
        # app.engine.cpu_binding.Placement (PRICER_MEMBER_CORES): the cores its calls compute on
        self.placement = placement
        self._queue: list[_Waiting] = []
        self._full = asyncio.Event()  # MAX_BATCH items wait: the gather wait ends
        self._worker: asyncio.Task | None = None

    def warm_up(self, item: Item) -> None:
        """One prediction at start-up (sync; loads lazy models), so the first request is not slow."""
        prices = self.estimator.predict([item])
        if len(prices) != 1 or not math.isfinite(prices[0]):
            raise ValueError(f"warm-up answered {prices!r}")

    async def predict(self, items: Sequence[Item], timeout_s: float) -> list[float]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append(_Waiting(list(items), future, time.monotonic(), time.monotonic() + timeout_s))
        if sum(len(w.items) for w in self._queue) >= MAX_BATCH:
            self._full.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(), name=f"member-{self.name}")
        try:
            prices = await asyncio.wait_for(future, timeout=timeout_s)  # cancels it: the batch skips it
        except TimeoutError:
            raise left_out(self.name, "timeout", f"over {timeout_s:g} s") from None
        except Exception as e:  # the estimator's own failure
            raise left_out(self.name, "error", f"{type(e).__name__}: {e}") from None
        finally:
            observe(self.name, time.perf_counter() - started)
        bad = [p for p in prices if p is None or not math.isfinite(p) or p < 0]
        if len(prices) != len(items) or bad:
            raise left_out(self.name, "error", f"unusable answer {prices!r}")
        return prices

    async def _drain(self) -> None:
        while self._queue:
            await self._gather()
            batch, size = [], 0
            while self._queue and (not batch or size + len(self._queue[0].items) <= MAX_BATCH):
                waiting = self._queue.pop(0)
                if not waiting.future.done():  # a request that timed out is skipped
                    batch.append(waiting)
                    size += len(waiting.items)
            if not batch:
                continue
            try:
                prices = await self._call([item for w in batch for item in w.items], batch)
            except Exception as e:
                if len(batch) > 1:
                    log.warning("member %s: a batch of %d requests failed (%s: %s); predicting each alone",
                                self.name, len(batch), type(e).__name__, e)
                    await self._each_alone(batch)
                elif not batch[0].future.done():
                    batch[0].future.set_exception(e)
                continue
            start = 0
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_result(prices[start:start + len(waiting.items)])
                start += len(waiting.items)

    async def _gather(self) -> None:
        """Wait up to gather_s from the oldest request's arrival, less once MAX_BATCH items wait."""
        if self.gather_s <= 0:
            return
        self._full.clear()
        left = self._queue[0].arrived + self.gather_s - time.monotonic()
        if left > 0 and sum(len(w.items) for w in self._queue) < MAX_BATCH:
            try:
                await asyncio.wait_for(self._full.wait(), left)
            except TimeoutError:
                pass

    async def _each_alone(self, batch: list[_Waiting]) -> None:
        for waiting in batch:
            if waiting.future.done():
                continue
            try:
                prices = await self._call(waiting.items, [waiting])
            except Exception as e:
                if not waiting.future.done():
                    waiting.future.set_exception(e)
            else:
                if not waiting.future.done():
                    waiting.future.set_result(prices)

    async def _call(self, items: list[Item], batch: list[_Waiting]) -> list[float]:
        """The estimator's prices for `items` in a worker thread, within the batch's latest deadline."""
        deadline = max(w.deadline for w in batch)

        cpus, threads = (self.placement.cpus, self.placement.threads) if self.placement else (None, None)

        def predict():
            with deadline_scope(deadline - time.monotonic()), on_cpus(cpus, threads):
                return self.estimator.predict(items)

        prices = [float(p) for p in await asyncio.to_thread(predict)]
        if len(prices) != len(items):
            raise ValueError(f"{len(prices)} prices for {len(items)} items")
        return prices

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        close = getattr(self.estimator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
