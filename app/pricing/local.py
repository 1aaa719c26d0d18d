"""The serving stack in-process, without HTTP, for synchronous callers (a Ray Data actor): what
`pricer serve` loads (app.pricing.stack: the engine, the adapter manager's choice, the ensemble
bundle, the comparables index) behind one `PricingCore`, on its own event loop in a thread.

It reads the store exactly as a replica does (the desired state, then the policies) and never writes
it: no heartbeat, no persisted activation, no adapter watching (a job prices with one version).
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.config import Settings
from app.pricing.core import PricingCore
from app.pricing.stack import ServingStack
from app.runtime.portal import Portal

log = logging.getLogger(__name__)


def ensemble_folder(settings: Settings) -> Path | None:
    """The bundle version a replica would load now (the desired state's, else the policy's); cheap."""
    from app.ensemble.manager import EnsembleManager
    from app.versions import desired

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
    from app.versions import desired

    state = desired.read(settings.models_dir)
    if not state.adapter_chosen:
        return NOT_CHOSEN
    return None if state.adapter is None else "@".join(state.adapter)


class LocalStack:
    """The serving stack (app.pricing.stack) for synchronous callers: it runs on its own event loop
    in a thread (app.runtime.portal). `with LocalStack(settings) as stack:
    stack.run(stack.core.price_many, bodies, texts)`. One pricing core for the stack's life: a job
    prices with one bundle and one adapter."""

    def __init__(self, settings: Settings):
        self.stack = ServingStack(settings)
        self.settings = self.stack.settings
        self._portal = Portal()
        self.core: PricingCore | None = None

    def run(self, function, *args):
        """`function(*args)` on the stack's loop (awaited when it is a coroutine function); its result."""
        return self._portal.call(function, *args)

    def __enter__(self) -> LocalStack:
        try:
            self.run(self.stack.start)
            self.core = self.stack.core()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def ensemble_reason(self) -> str:
        return self.stack.extras.reason if self.stack.extras is not None else ""

    @property
    def adapter(self) -> str | None:
        return self.stack.adapter_label

    def close(self) -> None:
        if not self._portal.running:
            return
        try:
            self._portal.call(self.stack.close)
        finally:
            self._portal.close()
