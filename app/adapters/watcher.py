"""Watches the adapter store and calls back on changes: file events (watchfiles), with a
polling fallback when events are unavailable (some network or container filesystems).

The callback rescans the whole store, so a missed or merged event costs nothing but latency;
a slow periodic rescan runs beside the events as a safety net."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)


class StoreWatcher:
    def __init__(self, folder: Path, on_change: Callable[[], Awaitable[None]], poll_seconds: float = 2.0):
        self.folder = Path(folder)
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.mode = "stopped"

    async def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._events()), asyncio.create_task(self._poll(safety_net=True))]

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.mode = "stopped"

    async def _notify(self) -> None:
        try:
            await self.on_change()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bad rescan must not stop the watching
            log.exception("adapter store rescan failed")

    async def _events(self) -> None:
        try:
            from watchfiles import awatch

            self.mode = "events"
            async for _changes in awatch(self.folder, stop_event=self._stop, debounce=300, step=50, recursive=True):
                await self._notify()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("file events unavailable for %s (%s); polling every %.1fs", self.folder, e, self.poll_seconds)
            self.mode = "polling"
            await self._poll(safety_net=False)

    async def _poll(self, safety_net: bool) -> None:
        # The safety net runs ten times slower than the fallback poll.
        interval = self.poll_seconds * (10 if safety_net else 1)
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
                return
            except asyncio.TimeoutError:
                await self._notify()
