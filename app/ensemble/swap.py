"""Making one ensemble bundle version answer: load it strictly (every member loads and warms up,
nothing missing, unlike at start-up, where a replica serves what it can), switch the reference in
Extras in one step (a request reads the bundle once and answers with it; its `ensemble` field names
it), and close the old bundle once its last answer is done."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from prometheus_client import Gauge

from app.ensemble.service import EnsembleService, load_ensemble
from app.versions.folders import folder_stamp
from app.versions.metrics import OneSeries, active_labels

log = logging.getLogger("pricer.ensemble")

RETIRE_GRACE_S = 2.0  # a request that read the old bundle just before the swap has started its answer by then

ENSEMBLE_ACTIVE_INFO = Gauge(
    "pricer_ensemble_active_info", "The ensemble bundle that answers (value 1; empty labels: the LLM alone).", ["name", "version"]
)
_active = OneSeries(ENSEMBLE_ACTIVE_INFO)


def set_active(label: str | None) -> None:
    """`label` "name@version"; None: the LLM alone answers."""
    _active.set(active_labels(label))


class EnsembleRefusedError(RuntimeError):
    """The version cannot be served here (-> 409); the message says why."""


class Swapper:
    """Swaps the bundle in `extras` (app.pricing.extras.Extras); `refusals` keeps why each version
    was refused ({version: (files stamp, why)}), for the listing."""

    def __init__(self, settings, refusals: dict):
        self.settings, self.refusals = settings, refusals
        self.extras = None
        self._retiring: set[asyncio.Task] = set()

    @property
    def active(self) -> EnsembleService | None:
        return None if self.extras is None else self.extras.ensemble

    async def swap_to(self, folder: Path) -> None:
        """Load `folder` strictly and make it answer; EnsembleRefusedError if not."""
        started = time.perf_counter()
        service, why = await asyncio.to_thread(load_ensemble, self.settings, folder)
        if service is not None and service.missing:
            why = "; ".join(f"member {m}: {r}" for m, r in service.missing.items())
            await service.close()
            service = None
        if service is None:
            self.refusals[folder.name] = (folder_stamp(folder), why)
            raise EnsembleRefusedError(f"{folder.parent.name}@{folder.name} was refused: {why}")
        self.refusals.pop(folder.name, None)
        old, self.extras.ensemble, self.extras.reason = self.active, service, ""
        set_active(service.label)
        log.info("ensemble %s answers (was %s; loaded and warmed up in %.1f s)", service.label,
                 old.label if old is not None else "none", time.perf_counter() - started)
        if old is not None and old is not service:
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, old: EnsembleService) -> None:
        try:
            await asyncio.sleep(RETIRE_GRACE_S)
            deadline = time.monotonic() + 10 * self.settings.member_timeout_s
            while old.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:  # also at shutdown (cancelled): the old bundle's members are closed
            await old.close()

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
