"""One saved member at serving time: requests that arrive together are priced in one call, in one
worker thread, so that sixteen concurrent requests cost one `predict` of sixteen items rather than
sixteen threads fighting over the CPU.

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

from app.ensemble import metrics
from app.model.items import Item

log = logging.getLogger("pricer.ensemble")

MAX_BATCH = 64  # items per predict call; more wait for the next call


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

    def __init__(self, name: str, estimator):
        self.name = name
        self.estimator = estimator
        self._queue: list[tuple[list[Item], asyncio.Future]] = []
        self._worker: asyncio.Task | None = None

    def warm_up(self, item: Item) -> None:
        """One prediction at start-up (sync; loads lazy models), so the first request is not slow."""
        prices = self.estimator.predict([item])
        if len(prices) != 1 or not math.isfinite(prices[0]):
            raise ValueError(f"warm-up answered {prices!r}")

    async def predict(self, items: Sequence[Item], timeout_s: float) -> list[float]:
        started = time.perf_counter()
        future = asyncio.get_running_loop().create_future()
        self._queue.append((list(items), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain(), name=f"member-{self.name}")
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
            batch, size = [], 0
            while self._queue and (not batch or size + len(self._queue[0][0]) <= MAX_BATCH):
                items, future = self._queue.pop(0)
                batch.append((items, future))
                size += len(items)
            flat = [item for items, _ in batch for item in items]
            try:
                prices = await asyncio.to_thread(self.estimator.predict, flat)
                prices = [float(p) for p in prices]
                if len(prices) != len(flat):
                    raise ValueError(f"{len(prices)} prices for {len(flat)} items")
            except Exception as e:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            start = 0
            for items, future in batch:
                if not future.done():
                    future.set_result(prices[start:start + len(items)])
                start += len(items)

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        close = getattr(self.estimator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
