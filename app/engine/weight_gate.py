"""WeightGate: one set of weights in an engine at a time, swapped only when nothing runs on them.

The merged engine (app/engine/merged.py) holds the base or one merged adapter version. Each request
names the weights it needs (a key: None for the base, else the merged folder). Requests for the
loaded weights run concurrently; a request for other weights queues, and from then on no new request
starts (those for the loaded weights queue behind it too, so a swap is never starved). When the
last running request leaves, the gate loads the weights at the head of the queue and admits every
request waiting for them at once; then the next key in the queue, in the order keys were first
asked for. A request that waits is never failed by the wait: only a failed load fails the
requests waiting for those weights (with the load's error), and the next request of any key then
loads its weights afresh (the engine's weights are unknown after a failed load).

All state changes happen on the event loop between awaits, so there is no lock. A load runs as a
task of its own: a waiter cancelled (its client gone, a deadline) never cancels a load that others
wait on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

UNKNOWN = object()  # the engine's weights after a failed load: whatever is asked next is loaded


@dataclass(eq=False)
class _Pending:
    key: Hashable
    future: asyncio.Future
    waiters: int = 0
    loading: bool = field(default=False)


class WeightGate:
    def __init__(self, load: Callable[[Hashable], Awaitable[None]], loaded: Hashable = None):
        """`load(key)` puts the weights `key` into the engine (called with nothing running); `loaded`:
        the key of the weights the engine holds now."""
        self._load = load
        self.loaded = loaded
        self.running = 0
        self._queue: deque[_Pending] = deque()
        self._task: asyncio.Task | None = None

    @property
    def waiting(self) -> int:
        return sum(p.waiters for p in self._queue)

    @asynccontextmanager
    async def use(self, key: Hashable):
        """`async with gate.use(key):` runs with the weights `key` loaded, and keeps them loaded."""
        await self._enter(key)
        try:
            yield
        finally:
            self.running -= 1
            self._kick()

    async def _enter(self, key: Hashable) -> None:
        if key == self.loaded and not self._queue and self._task is None:
            self.running += 1
            return
        pending = next((p for p in self._queue if p.key == key), None)
        if pending is None:
            pending = _Pending(key, asyncio.get_running_loop().create_future())
            self._queue.append(pending)
        pending.waiters += 1
        self._kick()
        try:
            await asyncio.shield(pending.future)  # raises the load's error; our slot is counted already
        except asyncio.CancelledError:
            if pending.future.done() and not pending.future.cancelled() and pending.future.exception() is None:
                self.running -= 1  # admitted just as we were cancelled: give the slot back
            else:
                pending.waiters -= 1
                if pending.waiters == 0 and not pending.loading and pending in self._queue:
                    self._queue.remove(pending)
            self._kick()
            raise

    def _kick(self) -> None:
        """Admit or start loading whatever the head of the queue waits for, when that is possible."""
        while self._task is None and self._queue:
            head = self._queue[0]
            if head.key == self.loaded and self.loaded is not UNKNOWN:
                self._admit(head)
                continue
            if self.running == 0:
                head.loading = True
                self._task = asyncio.get_running_loop().create_task(self._swap(head))
            return

    def _admit(self, pending: _Pending) -> None:
        self._queue.remove(pending)
        self.running += pending.waiters  # counted for them now: nothing can swap before they run
        if not pending.future.done():
            pending.future.set_result(None)

    async def _swap(self, pending: _Pending) -> None:
        try:
            await self._load(pending.key)
        except BaseException as e:  # noqa: BLE001 - handed to the waiters, who raise it
            self.loaded = UNKNOWN
            self._task = None
            self._queue.remove(pending)
            if pending.waiters and not pending.future.done():
                pending.future.set_exception(e if isinstance(e, Exception) else RuntimeError(f"weights load stopped: {e!r}"))
            self._kick()
            if not isinstance(e, Exception):
                raise
            return
        self.loaded = pending.key
        self._task = None
        self._admit(pending)
        self._kick()

    async def close(self) -> None:
        """Wait for a load in progress to end (so the engine is not shut down under it)."""
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
