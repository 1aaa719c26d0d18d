"""Bringing the engine and the adapter manager up behind a running server, watching the engine, and
taking both down again within a bounded time.

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
from pathlib import Path

from app.config import Settings
from app.engine.base import Engine, EngineDeadError

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


class Lifecycle:
    def __init__(self, settings: Settings, engine: Engine | None):
        self.settings = settings
        self.engine = engine
        self.owns_engine = engine is None
        self.adapters = None
        self.extras = None  # app.api.answers.Extras: the ensemble and the comparables index
        self.ensembles = None  # app.ensemble.manager.EnsembleManager: which bundle answers, hot-swapped
        self.fleet = None  # app.fleet.sync.FleetSync: follows the desired state, writes the heartbeat
        self.ready = False
        self.error: BaseException | None = None
        self.engine_died = False
        self.on_failure: Callable[[BaseException], None] | None = None  # `pricer serve` exits
        self._task: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None

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
            from app.api.answers import Extras

            base_dir = await self._start_engine()
            from app.ensemble.manager import EnsembleManager
            from app.fleet import desired, heartbeat

            replica = heartbeat.replica_id(self.settings)
            wanted = await asyncio.to_thread(desired.read, self.settings.models_dir)
            ensembles = EnsembleManager(self.settings, replica_id=replica)
            folder = await asyncio.to_thread(ensembles.start_folder, wanted)
            # The ensemble's members and the index load after the engine, not beside it: importing
            # transformers from two threads at once (vLLM's import and a member's) races inside its
            # lazy module ("cannot import name 'PreTrainedConfig' from 'transformers'").
            self.extras = await asyncio.to_thread(Extras.load, self.settings, folder)
            await ensembles.attach(self.extras, wanted)
            self.ensembles = ensembles
            attach_index(self.engine, self.extras)
            from app.adapters.manager import AdapterManager

            manager = AdapterManager(self.settings, self.engine, base_dir, replica_id=replica)
            await manager.start()
            self.adapters = manager
            from app.api.metrics import set_model_info

            active = manager.active
            set_model_info(self.engine.model_name, active.label if active else None)
            self.ready = True
            from app.fleet.sync import FleetSync

            self.fleet = FleetSync(self.settings, manager, ensembles, is_ready=lambda: self.ready)
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

    async def _start_engine(self) -> Path:
        if self.engine is None:
            from app.engine.factory import build_engine

            # Preparing a packaged base model dequantizes it (seconds): off the event loop.
            self.engine = await asyncio.to_thread(build_engine, self.settings)
            await self.engine.start()
        elif not self.engine.ready:
            await self.engine.start()
        return Path(getattr(self.engine, "model_dir", None) or self.settings.base_model_path())

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
            await _bounded(self.fleet.close(), budget, "leaving the fleet")
        if self.adapters is not None:
            await _bounded(self.adapters.close(), budget, "closing the adapter manager")
        if self.ensembles is not None:
            await _bounded(self.ensembles.close(), budget, "closing swapped-out ensemble bundles")
        if self.extras is not None:
            await _bounded(self.extras.close(), budget, "closing the ensemble's members")
        if self.owns_engine and self.engine is not None:
            await _bounded(self.engine.close(), budget, "closing the engine")


def attach_index(engine, extras) -> None:
    """Give the engine's prompts the comparables index (adapters trained with comparables in their
    prompts need it; without one the adapter manager refuses them and says why)."""
    spec = getattr(engine, "spec", None)
    if spec is not None and extras is not None and extras.comparables is not None:
        spec.use_index(extras.comparables.index)


async def _bounded(coro, timeout_s: float, what: str) -> None:
    """Await `coro` for at most `timeout_s`. Not asyncio.wait_for: on a time-out that waits for the
    cancelled work to finish, which is exactly what a hung engine call never does."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.error("%s took over %.0f s; going on without it", what, timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        log.error("%s failed", what, exc_info=task.exception())
