"""Each replica's loops: every PRICER_WATCH_POLL_SECONDS read the desired state and reconcile the
adapter manager and the ensemble manager to it (then write the heartbeat); and, beside it, write the
heartbeat every PRICER_WATCH_POLL_SECONDS whatever the reconciling does, so that a replica busy
loading a large bundle for tens of seconds stays in the fleet view. `wake()` runs a round at once
(after an activation here, so that `?wait=true` sees this replica at once)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime

from app.fleet import heartbeat
from app.fleet import metrics as fleet_metrics
from app.versions import desired

log = logging.getLogger(__name__)

FLEET_EVERY = 10  # rounds between this replica's own listings of the fleet


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FleetSync:
    def __init__(self, settings, adapters, ensembles=None, is_ready=lambda: True):
        self.settings = settings
        self.models_dir = settings.models_dir
        self.adapters, self.ensembles, self.is_ready = adapters, ensembles, is_ready
        self.replica = heartbeat.replica_id(settings)
        self.address = heartbeat.address(settings)
        self.started_at = _now()
        self.generation = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._last_error: str | None = None
        self._rounds = 0

    async def start(self) -> None:
        await self.round()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(), name="pricer-fleet-sync"),
                       loop.create_task(self._beats(), name="pricer-fleet-heartbeat")]

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.watch_poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.round()
                self._last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bad round must not stop the following; logged once per kind of error
                if str(e) != self._last_error:
                    log.exception("desired-state round failed")
                self._last_error = str(e)

    async def _beats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_poll_seconds)
            await self._write_beat()

    async def round(self) -> None:
        wanted = await asyncio.to_thread(desired.read, self.models_dir)
        fleet_metrics.DESIRED_GENERATION.set(wanted.generation)
        await self.adapters.reconcile(wanted)
        if self.ensembles is not None:
            await self.ensembles.reconcile(wanted)
        self.generation = wanted.generation
        fleet_metrics.APPLIED_GENERATION.set(wanted.generation)
        self._rounds += 1
        if self._rounds % FLEET_EVERY == 1:  # pricer_fleet_replicas (and pruning), not every round: N replicas x N files
            from app.fleet.view import fleet

            await asyncio.to_thread(fleet, self.models_dir, self.settings.fleet_stale_s)
        await self._write_beat()

    async def _write_beat(self) -> None:
        try:
            await asyncio.to_thread(heartbeat.write, self.models_dir, self.beat())
        except OSError as e:  # a read-only store: this replica still follows, it is just not listed
            if str(e) != self._last_error:
                log.warning("cannot write this replica's heartbeat: %s", e)
            self._last_error = str(e)

    def lags(self) -> list[dict]:
        parts = [self.adapters.lag, self.ensembles.lag if self.ensembles is not None else None]
        return [lag for lag in parts if lag]

    def status(self) -> dict:
        """What /readyz and GET /v1/adapters say: the generation this replica acted on, and its lag."""
        lags = self.lags()
        return {"replica": self.replica, "generation": self.generation, "converged": not lags, "lag": lags}

    def beat(self) -> dict:
        active = self.adapters.active
        return {
            "replica": self.replica, "host": socket.gethostname(), "address": self.address, "pid": os.getpid(),
            "ready": bool(self.is_ready()), "adapter": active.label if active is not None else None,
            "ensemble": self.ensembles.active_label if self.ensembles is not None else None,
            "generation": self.generation, "lag": self.lags(), "started_at": self.started_at, "last_seen": _now(),
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await asyncio.to_thread(heartbeat.remove, self.models_dir, self.replica)
        except OSError as e:
            log.warning("cannot remove this replica's heartbeat: %s", e)
