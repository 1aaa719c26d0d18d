"""Bringing the serving stack (app.pricing.stack: engine, bundle, index, adapters) up behind a
running server, watching the engine, following the fleet, and taking it all down within a bounded time.

The server accepts connections at once (so /healthz answers while a model loads for tens of
seconds: everything slow runs off the event loop); /readyz and the estimate routes answer 503 until
the engine is started and warmed and the adapter manager has restored the active adapter.

A watchdog checks the engine every second. When it dies, readiness turns 503 at once, requests are
answered 503, and `on_failure` is called (`pricer serve` then exits non-zero, so that its supervisor
restarts it: compose's `restart:`, Kubernetes). Shutdown never waits on a dead or hung engine: each
step is bounded by PRICER_SHUTDOWN_TIMEOUT_S.

An engine that the app built is the app's to close; one passed in (tests share one across apps) is
started if it is not yet, and never closed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from app.config import Settings
from app.engine.base import Engine, EngineDeadError
from app.pricing.stack import ServingStack, bounded

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


class Lifecycle:
    def __init__(self, settings: Settings, engine: Engine | None):
        self.settings = settings
        from app.fleet.heartbeat import replica_id

        # engine, bundle, index, adapters; this replica's name in the desired state's history and the fleet view
        self.stack = ServingStack(settings, engine, follow=True, replica_id=replica_id(settings))
        self.fleet = None  # app.fleet.sync.FleetSync: follows the desired state, writes the heartbeat
        self.ready = False
        self.error: BaseException | None = None
        self.engine_died = False
        self.on_failure: Callable[[BaseException], None] | None = None  # `pricer serve` exits
        self._task: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None

    # What the routes read (app/api/deps.py); each is None until the stack has started it.
    @property
    def engine(self) -> Engine | None:
        return self.stack.engine

    @property
    def adapters(self):
        return self.stack.adapters

    @property
    def extras(self):
        return self.stack.extras

    @property
    def ensembles(self):
        return self.stack.ensembles

    def not_ready_reason(self) -> str:
        if self.engine_died:
            return f"the inference engine is dead ({self.error}); the service is exiting so that its supervisor can restart it"
        if self.error is not None:
            return f"the service failed to start: {type(self.error).__name__}: {self.error}"
        return "the model is still loading; retry in a few seconds"

    def begin(self, app=None) -> None:
        self._task = asyncio.get_running_loop().create_task(self._bring_up(), name="pricer-startup")

    async def wait_ready(self) -> None:
        """For callers that want to block until started (tests, scripts)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _bring_up(self) -> None:
        try:
            await self.stack.start()
            from app.api.metrics import set_model_info

            active = self.adapters.active
            set_model_info(self.engine.model_name, active.label if active else None)
            self.ready = True
            from app.fleet.sync import FleetSync

            self.fleet = FleetSync(self.settings, self.adapters, self.ensembles, is_ready=lambda: self.ready)
            await self.fleet.start()
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="pricer-engine-watchdog")
            log.info("ready: model %s, adapter %s", self.engine.model_name, active.label if active else None)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self.error = e
            log.exception("startup failed")
            if self.on_failure is not None:
                self.on_failure(e)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            try:
                await asyncio.wait_for(self.engine.check_health(), timeout=10)
            except (EngineDeadError, TimeoutError) as e:
                self.engine_dead(e if isinstance(e, EngineDeadError) else EngineDeadError("the engine's health check hung"))
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine health check failed")

    def engine_dead(self, error: BaseException) -> None:
        """Readiness 503 at once; the process exits unless PRICER_ENGINE_DEATH_EXIT=false."""
        if self.engine_died:
            return
        self.ready, self.engine_died, self.error = False, True, error
        log.critical("the inference engine died: %s", error)
        if self.settings.engine_death_exit and self.on_failure is not None:
            self.on_failure(error)

    async def shutdown(self) -> None:
        self.ready = False
        budget = self.settings.shutdown_timeout_s
        for task in (self._task, self._watchdog):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=budget)
        if self.fleet is not None:
            await bounded(self.fleet.close(), budget, "leaving the fleet")
        await self.stack.close(budget)
