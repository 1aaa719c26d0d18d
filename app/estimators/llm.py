"""The `llm` estimator: the served model scored in-process, with the service's own engine and
decoding (VllmEngine + app.decoding), so `pricer evaluate --estimator llm` measures exactly what
`pricer serve` answers, without HTTP.

The async engine runs on its own event loop in a background thread; `predict` is synchronous.
`--adapter` takes a version folder, or `name[@version]` in the store; without it the best valid
version of `settings.default_adapter` is used, or the base model when there is none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from app.adapters.manifest import ADAPTER_CONFIG
from app.config import Settings
from app.engine.base import AdapterRef, Engine, PriceEstimate
from app.estimators.base import Estimator, EstimatorOptions
from app.items import Item

log = logging.getLogger(__name__)

LORA_ID = 1


class AdapterNotFoundError(ValueError):
    """The adapter asked for does not exist or cannot be served; the message says why."""


def _base_facts(settings: Settings):
    from app.adapters.validation import read_base_facts
    from app.models_store import resolve_base

    return read_base_facts(resolve_base(settings))


def _valid_versions(settings: Settings, name: str) -> tuple[list, list[str]]:
    """The servable versions of `name`, best first, and the reasons others were rejected."""
    from app.adapters.policy import best_first
    from app.adapters.store import scan
    from app.adapters.validation import AdapterRejected, check_static

    base = _base_facts(settings)
    valid, rejected = [], []
    for version in scan(settings.adapters_dir):
        if version.name != name:
            continue
        try:
            check_static(version, settings.adapters_dir, base, settings.max_lora_rank)
        except AdapterRejected as e:
            rejected.append(f"{version.label}: {e}")
        else:
            valid.append(version)
    return best_first(valid), rejected


def resolve_adapter(settings: Settings, spec: str | None) -> AdapterRef | None:
    """An adapter folder, `name`, `name@version`, or None (the default adapter, else the base)."""
    from app.adapters.store import parse_pin, read_version

    if spec:
        folder = Path(spec).expanduser()
        if (folder / ADAPTER_CONFIG).is_file():
            return AdapterRef(folder.parent.name, folder.name, folder.resolve(), LORA_ID)
        if "/" in spec or folder.exists():
            raise AdapterNotFoundError(f"{spec} is not an adapter folder (no {ADAPTER_CONFIG} in it)")
    name, version = parse_pin(spec) if spec else (settings.default_adapter, None)
    if not name:
        return None
    if version is not None:
        row = read_version(settings.adapters_dir, name, version)
        if row is None:
            raise AdapterNotFoundError(f"no adapter version {name}@{version} in {settings.adapters_dir}")
        valid, rejected = _valid_versions(settings, name)
        if row.key not in {v.key for v in valid}:
            raise AdapterNotFoundError(f"adapter {name}@{version} cannot be served: {'; '.join(rejected) or row.problem}")
        return AdapterRef(name, version, row.path.resolve(), LORA_ID)
    valid, rejected = _valid_versions(settings, name)
    if valid:
        return AdapterRef(name, valid[0].version, valid[0].path.resolve(), LORA_ID)
    if spec:
        why = f" (rejected: {'; '.join(rejected)})" if rejected else ""
        raise AdapterNotFoundError(f"no servable version of adapter {name!r} in {settings.adapters_dir}{why}")
    log.warning("no servable version of the default adapter %r: scoring the base model", name)
    return None


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
        adapter: AdapterRef | None = None,
        engine: Engine | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        batch_size: int = 64,
    ):
        """`engine` and `loop`: an engine already started on `loop` (tests share one); else the
        estimator builds its own engine on its own loop on first use, and closes it."""
        self.settings = settings
        self.adapter = adapter
        self.batch_size = batch_size
        self._engine = engine
        self._loop = loop
        self._owned: _LoopThread | None = None
        self._adapter_loaded = False

    @classmethod
    def create(cls, options: EstimatorOptions) -> LlmEstimator:
        return cls(options.settings, resolve_adapter(options.settings, options.adapter))

    @property
    def label(self) -> str:
        return self.adapter.label if self.adapter else "base"

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
        if self.adapter is not None and not self._adapter_loaded:
            await self._engine.add_adapter(self.adapter)
            self._adapter_loaded = True
        return self._engine

    async def _estimate(self, texts: list[str]) -> list[PriceEstimate]:
        engine = await self._ensure_ready()
        results: list[PriceEstimate] = []
        for start in range(0, len(texts), self.batch_size):
            results.extend(await engine.estimate(texts[start : start + self.batch_size], self.adapter))
        return results

    def estimates(self, items: Sequence[Item]) -> list[PriceEstimate]:
        """Point prices with their intervals (for coverage measurements)."""
        return self._run(self._estimate([item.text for item in items]))

    def predict(self, items: Sequence[Item]) -> list[float]:
        return [estimate.price for estimate in self.estimates(items)]

    async def _close(self) -> None:
        if self._engine is not None and self._adapter_loaded:
            try:
                await self._engine.remove_adapter(self.adapter)
            finally:
                self._adapter_loaded = False
        if self._owned is not None and self._engine is not None:
            await self._engine.close()
            self._engine = None

    def close(self) -> None:
        if self._loop is not None:
            self._run(self._close())
        if self._owned is not None:
            self._owned.stop()
            self._owned, self._loop = None, None
