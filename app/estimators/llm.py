"""The `llm` estimator: the served model scored in-process, with the service's own engine, serving
spec and adapter resolver (VllmEngine + app.model.spec + app.adapters' AdapterManager), so `pricer
evaluate --estimator llm` measures exactly what `pricer serve` answers, without HTTP.

Which version answers is decided only by app.adapters: an in-process AdapterManager over the same
store runs the same policy, persisted state (.pricer-state.json, read but never written here),
static checks and smoke check as the service. `--adapter` pins a version the way a request's
`adapter` field does (`name` or `name@version`; a version folder inside a store is read as that
store's `name@version`). The async engine runs on its own event loop in a background thread;
`predict` is synchronous.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from app.adapters.manifest import ADAPTER_CONFIG
from app.config import Settings
from app.engine.base import Engine
from app.estimators.base import Estimator, EstimatorOptions
from app.model.items import Item
from app.model.prices import PriceEstimate

log = logging.getLogger(__name__)


class AdapterNotFoundError(ValueError):
    """The adapter asked for does not exist or cannot be served; the message says why."""


def store_pin(settings: Settings, adapter: str | None) -> tuple[Settings, str | None]:
    """(settings, pin) for `--adapter`: None (the service's choice), `name`, `name@version`, or a
    version folder `<store>/adapters/<name>/<version>` (that store, that version)."""
    if not adapter:
        return settings, None
    folder = Path(adapter).expanduser()
    if (folder / ADAPTER_CONFIG).is_file():
        if folder.resolve().parent.parent.name != "adapters":
            raise AdapterNotFoundError(f"{adapter} is not inside a model store (<store>/adapters/<name>/<version>)")
        folder = folder.resolve()
        return settings.model_copy(update={"models_dir": folder.parents[2]}), f"{folder.parent.name}@{folder.name}"
    if "/" in adapter or folder.exists():
        raise AdapterNotFoundError(f"{adapter} is not an adapter folder (no {ADAPTER_CONFIG} in it)")
    return settings, adapter


class _LoopThread:
    """An event loop running in a daemon thread; coroutines are submitted to it from sync code."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="llm-estimator-loop", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class LlmEstimator(Estimator):
    name = "llm"

    def __init__(
        self,
        settings: Settings,
        pin: str | None = None,
        engine: Engine | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        batch_size: int = 64,
    ):
        """`pin`: `name` or `name@version`, else the version the service would serve. `engine` and
        `loop`: an engine already started on `loop` (tests share one); else the estimator builds
        its own engine on its own loop on first use, and closes it."""
        self.settings = settings
        self.pin = pin
        self.batch_size = batch_size
        self._engine = engine
        self._loop = loop
        self._owned: _LoopThread | None = None
        self._owns_engine = engine is None
        self._manager = None
        self.labels: set[str] = set()  # every version that answered ("base" for the base model)

    @classmethod
    def create(cls, options: EstimatorOptions) -> LlmEstimator:
        settings, pin = store_pin(options.settings, options.adapter)
        return cls(settings, pin)

    @property
    def label(self) -> str:
        """The version that answers (`name@version`, or "base"); resolved on first use."""
        if not self.labels:
            self.labels.add(self._run(self._resolve()))
        return ", ".join(sorted(self.labels))

    def describe(self) -> dict:
        """For `evaluate --json`: the version that answered (null: the base model)."""
        return {"adapter": None if self.label == "base" else self.label}

    def _run(self, coroutine):
        if self._loop is None:
            self._owned = _LoopThread()
            self._loop = self._owned.loop
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _ensure_ready(self) -> Engine:
        if self._engine is None:
            from app.engine.factory import build_engine

            engine = build_engine(self.settings)
            await engine.start()
            self._engine = engine
            from app.index.service import use_index_from_settings

            # as the service does: the index for adapters trained with comparables in their prompts
            await asyncio.to_thread(use_index_from_settings, getattr(engine, "spec", None), self.settings)
        if self._manager is None:
            from app.adapters.manager import AdapterManager

            base_dir = Path(getattr(self._engine, "model_dir", None) or self.settings.base_model_path())
            settings = self.settings.model_copy(update={"watch_adapters": False})
            manager = AdapterManager(settings, self._engine, base_dir, persist=False)
            await manager.start()
            self._manager = manager
            if self.pin is not None:
                await self._resolve()  # an unknown or rejected pin fails now, with the manager's reason
        return self._engine

    async def _resolve(self) -> str:
        from app.adapters.manager import AdapterUnavailableError, UnknownAdapterError

        await self._ensure_ready()
        try:
            async with self._manager.lease(self.pin) as ref:
                return ref.label if ref is not None else "base"
        except (UnknownAdapterError, AdapterUnavailableError) as e:
            raise AdapterNotFoundError(f"adapter {self.pin!r} in {self.settings.adapters_dir}: {e}") from None

    async def _estimate(self, texts: list[str]) -> list[PriceEstimate]:
        engine = await self._ensure_ready()
        results: list[PriceEstimate] = []
        for start in range(0, len(texts), self.batch_size):
            async with self._manager.lease(self.pin) as ref:
                self.labels.add(ref.label if ref is not None else "base")
                results.extend(await engine.estimate(texts[start : start + self.batch_size], ref))
        return results

    def estimates(self, items: Sequence[Item]) -> list[PriceEstimate]:
        """Point prices with their intervals (for coverage measurements)."""
        return self._run(self._estimate([item.text for item in items]))

    def predict(self, items: Sequence[Item]) -> list[float]:
        return [estimate.price for estimate in self.estimates(items)]

    async def _close(self) -> None:
        manager, self._manager = self._manager, None
        try:
            if manager is not None:
                await manager.close()  # unloads the versions it loaded
        finally:
            if self._owns_engine and self._engine is not None:
                await self._engine.close()
                self._engine = None

    def close(self) -> None:
        if self._loop is not None:
            self._run(self._close())
        if self._owned is not None:
            self._owned.stop()
            self._owned, self._loop = None, None
