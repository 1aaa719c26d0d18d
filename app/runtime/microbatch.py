"""A micro-batcher: the items of concurrent callers gathered into one call of a function over a list,
in one worker thread (the batch queue of infinity or Ray Serve's @serve.batch, for threads).

`MicroBatcher(fn, max_batch, max_wait_s).run(items, timeout_s)` blocks its caller until `fn` has
answered its items, and returns their results in its order. The worker takes the first waiting
request, waits at most `max_wait_s` from that request's arrival for others (less once `max_batch`
items are waiting), and calls `fn` once on all of their items, whole requests only (a request larger
than `max_batch` goes alone). When that call raises, each item is retried on its own, so only the
callers whose items fail get the error. A caller never waits past its timeout, nor past the deadline
of the scope it runs in (`deadline_scope`, which `asyncio.to_thread` carries into worker threads): it
gets TimeoutError, and its items are dropped from a batch not yet started.

Generic and small on purpose: app.index.minilm batches MiniLM embeddings with it (knn, embed-gbm,
the comparables and the retrieval-augmented prompt share one encode call).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("pricer.runtime")

T = TypeVar("T")
R = TypeVar("R")

# Absolute time.monotonic() deadline of the work this context does (None: none).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("pricer_deadline", default=None)


@contextmanager
def deadline_scope(timeout_s: float | None) -> Iterator[None]:
    """Work inside waits at most `timeout_s` from now (an enclosing, earlier deadline still holds)."""
    if timeout_s is None:
        yield
        return
    deadline = time.monotonic() + timeout_s
    outer = _DEADLINE.get()
    token = _DEADLINE.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left(timeout_s: float | None = None) -> float | None:
    """Seconds until the earlier of `timeout_s` from now and the scope's deadline; None: no limit."""
    deadline = _DEADLINE.get()
    scope = None if deadline is None else deadline - time.monotonic()
    if timeout_s is None:
        return scope
    return timeout_s if scope is None else min(timeout_s, scope)


@dataclass(eq=False)
class _Request:
    items: list
    arrived: float
    done: threading.Event = field(default_factory=threading.Event)
    results: list | None = None
    error: BaseException | None = None
    abandoned: bool = False  # its caller stopped waiting


class MicroBatcher(Generic[T, R]):
    """`fn` (a list of items -> one result per item, in order) called on micro-batches of concurrent
    callers' items in one worker thread; `thread_setup` runs first in that thread (e.g. to pin it)."""

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = 64, max_wait_s: float = 0.002,
                 name: str = "microbatch", thread_setup: Callable[[], Any] | None = None):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch {max_batch} must be >= 1 and max_wait_s {max_wait_s} >= 0")
        self.fn, self.max_batch, self.max_wait_s, self.name = fn, max_batch, max_wait_s, name
        self.thread_setup = thread_setup
        self.calls = 0  # calls of fn on a batch (retries of single items not counted)
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False

    def run(self, items: Sequence[T], timeout_s: float | None = None) -> list[R]:
        """The results for `items`, in order; TimeoutError past `timeout_s` (or the scope's deadline)."""
        items = list(items)
        if not items:
            return []
        if self._worker is threading.current_thread():  # fn itself asks: no batch to wait for
            return self._call(items)
        wait = time_left(timeout_s)
        if wait is not None and wait <= 0:
            raise TimeoutError(f"{self.name}: deadline passed before the items were queued")
        request = _Request(items, time.monotonic())
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name}: closed")
            self._queue.append(request)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._worker.start()
            self._cond.notify()
        if not request.done.wait(wait):
            with self._cond:
                request.abandoned = True
                if request in self._queue:  # not started: dropped from the next batch
                    self._queue.remove(request)
            if not request.done.is_set():
                raise TimeoutError(f"{self.name}: no answer within {wait:.3g} s")
        if request.error is not None:
            raise request.error
        assert request.results is not None
        return request.results

    def close(self, timeout_s: float = 5.0) -> None:
        """Answer what is queued, then stop the worker; later calls raise RuntimeError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout_s)

    def _loop(self) -> None:
        if self.thread_setup is not None:
            try:
                self.thread_setup()
            except Exception as e:  # runs unpinned rather than not at all
                log.warning("%s: thread setup failed (%s: %s); running without it", self.name, type(e).__name__, e)
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._answer(batch)
            finally:
                for request in batch:
                    request.done.set()

    def _next_batch(self) -> list[_Request] | None:
        """Block for the next batch (None: closed and drained); marks its requests started."""
        with self._cond:
            while True:
                while self._queue and self._queue[0].abandoned:
                    self._queue.popleft()
                if not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                size = sum(len(r.items) for r in self._queue)
                left = self._queue[0].arrived + self.max_wait_s - time.monotonic()
                if size >= self.max_batch or left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            batch, size = [], 0
            while self._queue and (not batch or size + len(self._queue[0].items) <= self.max_batch):
                request = self._queue.popleft()
                if not request.abandoned:
                    batch.append(request)
                    size += len(request.items)
            return batch

    def _call(self, items: list[T]) -> list[R]:
        results = list(self.fn(items))
        if len(results) != len(items):
            raise ValueError(f"{self.name}: {len(results)} results for {len(items)} items")
        return results

    def _answer(self, batch: list[_Request]) -> None:
        flat = [item for request in batch for item in request.items]
        self.calls += 1
        try:
            results = self._call(flat)
        except Exception as e:
            if len(batch) == 1:
                batch[0].error = e
                return
            log.warning("%s: a batch of %d requests failed (%s: %s); retrying each item alone",
                        self.name, len(batch), type(e).__name__, e)
            for request in batch:
                self._answer_alone(request)
            return
        except BaseException as e:  # KeyboardInterrupt, SystemExit: every caller hears of it
            for request in batch:
                request.error = e
            raise
        start = 0
        for request in batch:
            request.results = results[start:start + len(request.items)]
            start += len(request.items)

    def _answer_alone(self, request: _Request) -> None:
        """One item at a time: the first failing item fails this request only."""
        results = []
        for item in request.items:
            if request.abandoned:
                return
            try:
                results.extend(self._call([item]))
            except Exception as e:
                request.error = e
                return
        request.results = results
