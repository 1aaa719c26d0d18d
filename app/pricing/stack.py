"""ServingStack: the one place the serving stack is assembled from Settings.

The engine, then the ensemble bundle and the comparables index (after the engine, never beside it:
importing transformers from two threads at once, vLLM's import and a member's, races inside its lazy
module), then the index attached to the engine's prompts, then the adapter manager. The service's
lifecycle (app/api/lifecycle.py: it adds its watchdog and fleet sync), the batch job's pricing actor
(app/pricing/local.py) and the `llm` estimator all start the stack here, so a change to how it
starts is made once.

`follow` (the service): the stack is one replica of the fleet. Its adapter and ensemble choices are
published to the store's desired state and it follows that state. Otherwise it reads the store as a
replica would and never writes to it: no heartbeat, no persisted activation, no adapter watching.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.config import Settings
from app.engine.base import Engine
from app.pricing.core import PricingCore
from app.pricing.extras import Extras

log = logging.getLogger(__name__)


class ServingStack:
    """`stack = ServingStack(settings); await stack.start(); stack.core().price_many(...); await stack.close()`.

    `engine`: one already built (tests share one across stacks); it is started if it is not yet and
    never closed here. Otherwise the stack builds its own and closes it."""

    def __init__(self, settings: Settings, engine: Engine | None = None, *, follow: bool = False,
                 replica_id: str | None = None):
        self.settings = settings if follow else settings.model_copy(update={"watch_adapters": False})
        self.follow, self.replica_id = follow, replica_id
        self.engine = engine
        self.owns_engine = engine is None
        self.extras: Extras | None = None
        self.ensembles = None  # app.ensemble.manager.EnsembleManager: which bundle answers, hot-swapped
        self.adapters = None  # app.adapters.manager.AdapterManager: which adapter answers

    @property
    def base_dir(self) -> Path:
        """The served base model's folder (adapters record which base they were trained on)."""
        return Path(getattr(self.engine, "model_dir", None) or self.settings.base_model_path())

    async def start(self) -> None:
        from app.adapters.manager import AdapterManager
        from app.ensemble.manager import EnsembleManager
        from app.versions import desired
        from app.index.service import attach_index

        await self._start_engine()
        wanted = await asyncio.to_thread(desired.read, self.settings.models_dir)
        self.ensembles = EnsembleManager(self.settings, persist=self.follow, replica_id=self.replica_id)
        folder = await asyncio.to_thread(self.ensembles.start_folder, wanted)
        self.extras = await asyncio.to_thread(Extras.load, self.settings, folder)
        if self.follow:
            await self.ensembles.attach(self.extras, wanted)
        attach_index(getattr(self.engine, "spec", None), comparables=self.extras.comparables)
        self.adapters = AdapterManager(self.settings, self.engine, self.base_dir, persist=self.follow,
                                       replica_id=self.replica_id)
        await self.adapters.start()

    async def _start_engine(self) -> None:
        if self.engine is None:
            from app.engine.factory import build_engine

            # Preparing a packaged base model dequantizes it (seconds): off the event loop.
            self.engine = await asyncio.to_thread(build_engine, self.settings)
        if not self.engine.ready:
            await self.engine.start()

    def core(self, model_label: str | None = None) -> PricingCore:
        """A pricing core over what answers now: the bundle is read here, so a hot swap takes effect
        from the next call, and a call in flight finishes with the bundle it started with."""
        extras = self.extras
        return PricingCore(self.settings, self.engine, self.adapters, model_label,
                           ensemble=extras and extras.ensemble, comparables=extras and extras.comparables)

    @property
    def adapter_label(self) -> str | None:
        active = self.adapters.active if self.adapters is not None else None
        return active.label if active is not None else None

    async def close(self, timeout_s: float | None = None) -> None:
        """Adapters, swapped-out bundles, the members, then the engine (if the stack built it); each
        step bounded by `timeout_s` (a hung engine never holds up a shutdown)."""
        steps = [(self.adapters, "closing the adapter manager"), (self.ensembles, "closing swapped-out ensemble bundles"),
                 (self.extras, "closing the ensemble's members")]
        if self.owns_engine:
            steps.append((self.engine, "closing the engine"))
        for closer, what in steps:
            if closer is not None:
                await bounded(closer.close(), timeout_s, what)


async def bounded(coro, timeout_s: float | None, what: str) -> None:
    """Await `coro` for at most `timeout_s` (None: no limit); log, never raise, a failure. Not
    asyncio.wait_for: on a time-out that waits for the cancelled work to finish, which is exactly
    what a hung engine call never does."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.error("%s took over %.0f s; going on without it", what, timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        log.error("%s failed", what, exc_info=task.exception())
