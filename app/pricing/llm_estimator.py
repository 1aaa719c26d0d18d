"""The `llm` estimator: the served model scored in-process, with the service's own engine, serving
spec and adapter resolver (the serving stack, app.pricing.stack, with the LLM alone answering), so
`pricer evaluate --estimator llm` measures exactly what the service's LLM member answers, without HTTP.

Which version answers is decided only by app.adapters: an in-process AdapterManager over the same
store runs the same policy, persisted state (.pricer-state.json, read but never written here),
static checks and smoke check as the service. `--adapter` pins a version the way a request's
`adapter` field does (`name` or `name@version`; a version folder inside a store is read as that
store's `name@version`). The async stack runs on its own event loop in a thread; `predict` is
synchronous.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from app.adapters.manifest import ADAPTER_CONFIG
from app.config import Settings
from app.engine.base import Engine
from app.estimators.base import Estimator, EstimatorOptions
from app.model.items import Item
from app.model.prices import PriceEstimate
from app.runtime.portal import Portal

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
        self._portal = Portal(loop)  # the caller's loop, else its own loop in a thread (started on first use)
        self._stack = None  # app.pricing.stack.ServingStack, started on first use
        self.labels: set[str] = set()  # every version that answered ("base" for the base model)

    @classmethod
    def create(cls, options: EstimatorOptions) -> LlmEstimator:
        settings, pin = store_pin(options.settings, options.adapter)
        return cls(settings, pin)

    @property
    def label(self) -> str:
        """The version that answers (`name@version`, or "base"); resolved on first use."""
        if not self.labels:
            self.labels.add(self._run(self._resolve))
        return ", ".join(sorted(self.labels))

    @property
    def spec(self):
        """The serving spec of the engine that answers (app.model.spec.ServingSpec); None before first use."""
        return getattr(self._stack.engine, "spec", None) if self._stack is not None else None

    def describe(self) -> dict:
        """For `evaluate --json`: the version that answered (null: the base model)."""
        return {"adapter": None if self.label == "base" else self.label}

    def _run(self, function, *args):
        """`function(*args)` awaited on the engine's loop: the caller's, else this estimator's own
        (app.runtime.portal: a loop in a thread)."""
        return self._portal.call(function, *args)

    async def _ensure_ready(self) -> Engine:
        if self._stack is None:
            from app.pricing.stack import ServingStack

            # As the service starts it (the index for adapters trained with comparables in their
            # prompts, the adapter manager's choice), with the LLM alone answering.
            stack = ServingStack(self.settings.model_copy(update={"estimator": "llm"}), self._engine)
            await stack.start()
            self._stack = stack
            if self.pin is not None:
                await self._resolve()  # an unknown or rejected pin fails now, with the manager's reason
        return self._stack.engine

    async def _resolve(self) -> str:
        from app.adapters.manager import AdapterUnavailableError, UnknownAdapterError

        await self._ensure_ready()
        try:
            async with self._stack.adapters.lease(self.pin) as ref:
                return ref.label if ref is not None else "base"
        except (UnknownAdapterError, AdapterUnavailableError) as e:
            raise AdapterNotFoundError(f"adapter {self.pin!r} in {self.settings.adapters_dir}: {e}") from None

    async def _estimate(self, texts: list[str]) -> list[PriceEstimate]:
        engine = await self._ensure_ready()
        results: list[PriceEstimate] = []
        for start in range(0, len(texts), self.batch_size):
            async with self._stack.adapters.lease(self.pin) as ref:
                self.labels.add(ref.label if ref is not None else "base")
                results.extend(await engine.estimate(texts[start : start + self.batch_size], ref))
        return results

    def estimates(self, items: Sequence[Item]) -> list[PriceEstimate]:
        """Point prices with their intervals (for coverage measurements)."""
        return self._run(self._estimate, [item.text for item in items])

    def predict(self, items: Sequence[Item]) -> list[float]:
        return [estimate.price for estimate in self.estimates(items)]

    def close(self) -> None:
        """Unloads the versions it loaded; closes the engine if it built it, and its own loop."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self._run(stack.close)
        self._portal.close()
