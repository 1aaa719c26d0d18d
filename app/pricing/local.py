"""The serving stack in-process, without HTTP: what `pricer serve` loads (the engine, the adapter
manager's choice, the ensemble bundle, the comparables index) behind one `PricingCore`, run on its
own event loop in a background thread so that synchronous callers (a Ray Data actor) can use it.

It reads the store exactly as a replica does (the desired state, then the policies) and never writes
it: no heartbeat, no persisted activation, no adapter watching (a job prices with one version).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from app.config import Settings
from app.pricing.core import PricingCore

log = logging.getLogger(__name__)


def ensemble_folder(settings: Settings) -> Path | None:
    """The bundle version a replica would load now (the desired state's, else the policy's); cheap."""
    from app.ensemble.manager import EnsembleManager
    from app.fleet import desired

    return EnsembleManager(settings, persist=False).start_folder(desired.read(settings.models_dir))


def ensemble_label(settings: Settings) -> str | None:
    """name@version of that bundle, None: the LLM alone would answer."""
    folder = ensemble_folder(settings)
    return None if folder is None else f"{folder.parent.name}@{folder.name}"


NOT_CHOSEN = object()


def desired_adapter_label(settings: Settings):
    """name@version of the adapter the store's desired state names (None: the base model), or
    NOT_CHOSEN when it names none and each replica's policy decides (known only once a worker has
    loaded the adapter manager); cheap."""
    from app.fleet import desired

    state = desired.read(settings.models_dir)
    if not state.adapter_chosen:
        return NOT_CHOSEN
    return None if state.adapter is None else "@".join(state.adapter)


class LocalStack:
    """`with LocalStack(settings) as stack: stack.run(stack.core.price_many(bodies, texts))`."""

    def __init__(self, settings: Settings):
        self.settings = settings.model_copy(update={"watch_adapters": False})
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pricer-local-stack", daemon=True)
        self._thread.start()
        self.core: PricingCore | None = None
        self._engine = self._adapters = self._extras = None
        self.ensemble_reason = ""

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def __enter__(self) -> LocalStack:
        try:
            self.run(self._start())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    async def _start(self) -> None:
        from app.adapters.manager import AdapterManager
        from app.api.answers import Extras
        from app.api.lifecycle import attach_index
        from app.engine.factory import build_engine

        engine = await asyncio.to_thread(build_engine, self.settings)
        await engine.start()
        self._engine = engine
        # After the engine, not beside it (the service's order: transformers' lazy imports race).
        folder = await asyncio.to_thread(ensemble_folder, self.settings)
        self._extras = await asyncio.to_thread(Extras.load, self.settings, folder)
        self.ensemble_reason = self._extras.reason
        attach_index(engine, self._extras)
        base_dir = Path(getattr(engine, "model_dir", None) or self.settings.base_model_path())
        self._adapters = AdapterManager(self.settings, engine, base_dir, persist=False)
        await self._adapters.start()
        self.core = PricingCore(self.settings, engine, self._adapters, ensemble=self._extras.ensemble,
                                comparables=self._extras.comparables)

    @property
    def adapter(self) -> str | None:
        active = self._adapters.active if self._adapters is not None else None
        return active.label if active is not None else None

    async def _close(self) -> None:
        for closer in (self._adapters, self._extras, self._engine):
            if closer is not None:
                try:
                    await closer.close()
                except Exception:
                    log.exception("closing %s", type(closer).__name__)

    def close(self) -> None:
        if self.loop.is_running():
            try:
                self.run(self._close())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=10)
