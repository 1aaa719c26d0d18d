"""An event loop in a thread, for synchronous code that drives Pricer's async stack (a CLI command,
an evaluation, a Ray actor): anyio's blocking portal, started on the first call and stopped by
close(). `with Portal() as portal: portal.call(stack.start)`.

It can also stand in front of a loop that already runs in another thread (a test's, shared with an
engine started on it): calls then go to that loop, and close() leaves it running.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal


class Portal:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, backend: str = "asyncio"):
        self._loop, self._backend = loop, backend
        self._portal: BlockingPortal | None = None
        self._context: AbstractContextManager[BlockingPortal] | None = None
        self._lock = threading.Lock()

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` run on the loop (awaited when it returns an awaitable); its result, or
        its exception raised here. Blocks; never call it from the loop's own thread."""
        if self._loop is not None:
            return asyncio.run_coroutine_threadsafe(_awaited(function, *args), self._loop).result()
        return self._started().call(function, *args)

    def _started(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                context = start_blocking_portal(self._backend)
                self._portal, self._context = context.__enter__(), context
            return self._portal

    @property
    def running(self) -> bool:
        """Whether this portal's own loop thread runs (false with a caller's loop)."""
        return self._portal is not None

    def close(self) -> None:
        """Stops the portal's loop and joins its thread, after the calls in flight; a later call
        starts a new one. A caller's loop is left running."""
        with self._lock:
            context, self._context, self._portal = self._context, None, None
        if context is not None:
            context.__exit__(None, None, None)

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


async def _awaited(function: Callable[..., Any], *args: Any) -> Any:
    result = function(*args)
    return await result if inspect.isawaitable(result) else result
