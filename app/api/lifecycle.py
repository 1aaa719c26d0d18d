"""Bringing the engine and the adapter manager up behind a running server, and down again.

The server accepts connections at once (so /healthz answers while a model loads for tens of
seconds); /readyz and the estimate routes answer 503 until the engine is started and warmed and the
adapter manager has restored the active adapter. An engine that the app built is the app's to close;
one passed in (tests share one across apps) is started if it is not yet, and never closed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from app.config import Settings
from app.engine.base import Engine

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(self, settings: Settings, engine: Engine | None):
        self.settings = settings
        self.engine = engine
        self.owns_engine = engine is None
        self.adapters = None
        self.ready = False
        self.error: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None  # `pricer serve` exits
        self._task: asyncio.Task | None = None

    def not_ready_reason(self) -> str:
        if self.error is not None:
            return f"the service failed to start: {type(self.error).__name__}: {self.error}"
        return "the model is still loading; retry in a few seconds"

    def begin(self, app) -> None:
        self._task = asyncio.get_running_loop().create_task(self._bring_up(app), name="pricer-startup")

    async def wait_ready(self) -> None:
        """For callers that want to block until started (tests, scripts)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _bring_up(self, app) -> None:
        try:
            base_dir = await self._start_engine()
            app.state.engine = self.engine
            from app.adapters.manager import AdapterManager

            manager = AdapterManager(self.settings, self.engine, base_dir)
            await manager.start()
            self.adapters = app.state.adapters = manager
            from app.api.metrics import set_model_info

            active = manager.active
            set_model_info(self.engine.model_name, active.label if active else None)
            self.ready = True
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
            from app.models_store import resolve_base

            # Preparing a packaged base model dequantizes it (seconds): off the event loop.
            base_dir = await asyncio.to_thread(resolve_base, self.settings)
            self.engine = build_engine(self.settings)
            await self.engine.start()
            return Path(getattr(self.engine, "model_dir", None) or base_dir)
        if not self.engine.ready:
            await self.engine.start()
        return Path(getattr(self.engine, "model_dir", None) or self.settings.base_model_path())

    async def shutdown(self) -> None:
        self.ready = False
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.adapters is not None:
            try:
                await self.adapters.close()
            except Exception:
                log.exception("closing the adapter manager failed")
        if self.owns_engine and self.engine is not None:
            try:
                await self.engine.close()
            except Exception:
                log.exception("closing the engine failed")
