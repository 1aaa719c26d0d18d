"""Following the desired state (app.fleet.desired), a mixin of AdapterManager.

- At start a replica serves the chosen version; when nothing is chosen yet it takes its policy's
  choice and publishes it (compare-and-set: a replica that loses the race follows the winner).
- Every poll (app.fleet.sync) it reconciles: a new choice is activated here. A choice this replica
  refuses (a check fails, the files are not here) keeps the current version serving and is recorded
  as the lag (GET /v1/adapters, /readyz, pricer_desired_state_lag). It is tried again only when the
  choice changes or that version's files do (or, for a failure that was no rejection, after
  RETRY_AFTER_S), never on every poll: no flapping, one log line.
- Activations by the admin API or the policy publish the next generation.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.adapters import metrics, policy
from app.adapters.leases import AdapterUnavailableError
from app.adapters.store import folder_stamp, read_version
from app.fleet import desired
from app.fleet import metrics as fleet_metrics
from app.fleet.desired import DesiredState, GenerationConflict, StateError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 60.0


class FollowMixin:
    """Needs the manager's `_entries`, `_active`, `_lock`, `settings`, `persist`, `served_point`,
    `_rescan_locked`, `_activate_locked` and `_set_base_active`."""

    replica_id: str | None = None
    generation_seen: int = 0
    lag: dict | None = None  # {"desired", "active", "reason"} while this replica cannot follow
    _applied_key: tuple | None = None
    _refused: tuple | None = None  # (state key, entry or None, files stamp, monotonic time)

    def _active_key(self) -> tuple[str, str] | None:
        return None if self._active is None else (self._active.name, self._active.version)

    def desired_status(self) -> dict:
        """What GET /v1/adapters and /readyz say about the desired state."""
        return {"generation": self.generation_seen, "converged": self.lag is None, "lag": self.lag}

    # ------------------------------------------------------------------ start
    async def _restore_locked(self) -> None:
        wanted = await asyncio.to_thread(desired.read, self.settings.models_dir)
        self.generation_seen = wanted.generation
        if wanted.adapter_chosen:
            if wanted.adapter is None:
                log.info("desired state (generation %d): the base model", wanted.generation)
            if await self._follow_locked(wanted):
                self._applied_key = wanted.key
                return
        chosen = await self._activate_by_policy_locked()
        if not wanted.adapter_chosen:
            await self._publish_choice(chosen, wanted.generation)

    async def _activate_by_policy_locked(self) -> tuple[str, str] | None:
        """The policy's choice among PRICER_DEFAULT_ADAPTER's versions (None: the base model)."""
        name = self.settings.default_adapter
        candidates = [e.version for e in self._entries.values() if e.version.name == name and not e.rejected]
        for version in policy.ranked(candidates, self.settings.adapter_policy, self.served_point):
            try:
                await self._activate_locked(self._entries[version.key])
                return version.key
            except AdapterUnavailableError as e:
                log.warning("cannot activate %s at start: %s", version.label, e)
        metrics.set_active(None, None)
        log.info("serving the base model (no usable version of %r)", name)
        return None

    # ------------------------------------------------------------------ publishing
    async def _publish_choice(self, key: tuple[str, str] | None, expect: int | None, strict: bool = False) -> DesiredState | None:
        """Write `key` as every replica's choice. `expect` set: only over that generation; on a
        conflict the winner is followed (strict: the conflict is raised for the admin caller).
        Not strict, a store that cannot be written is logged and this replica keeps serving."""
        if not self.persist:
            return None
        for _ in range(5):
            try:
                state = await asyncio.to_thread(desired.update, self.settings.models_dir, adapter=key,
                                                expect_generation=expect, by=self.replica_id)
                break
            except GenerationConflict as e:
                if strict:
                    raise
                if not e.found.adapter_chosen:  # the other write chose an ensemble only: try again over it
                    expect = e.found.generation
                    continue
                log.info("another replica chose first (generation %d): following it", e.found.generation)
                self.generation_seen = e.found.generation
                if await self._follow_locked(e.found):
                    self._applied_key = e.found.key
                return e.found
            except StateError as e:
                if strict:
                    raise
                log.error("cannot publish the chosen adapter version: %s", e)
                return None
        else:
            log.warning("the chosen adapter version was not published (the desired state kept changing)")
            return None
        self.generation_seen, self._applied_key, self.lag, self._refused = state.generation, state.key, None, None
        fleet_metrics.set_lag("adapter", None)
        log.info("desired state generation %d: adapter %s", state.generation, state.adapter_label or "the base model")
        return state

    # ------------------------------------------------------------------ reconciling
    async def reconcile(self, wanted: DesiredState) -> None:
        """Bring this replica to `wanted` (called every poll; cheap when nothing changed)."""
        if not wanted.adapter_chosen:
            self.generation_seen = max(self.generation_seen, wanted.generation)
            return
        if wanted.key == self._applied_key and self.lag is None and self._active_key() == wanted.adapter:
            return
        if self.lag is not None and not await asyncio.to_thread(self._worth_retrying, wanted):
            self.generation_seen = wanted.generation
            return
        async with self._lock:
            self.generation_seen = wanted.generation
            if await self._follow_locked(wanted):
                self._applied_key = wanted.key

    def _worth_retrying(self, wanted: DesiredState) -> bool:
        if self._refused is None or self._refused[0] != wanted.key:
            return True
        _, entry, stamp, when = self._refused
        if entry is None:  # the version was not in the store: is it now?
            return read_version(self.settings.adapters_dir, *wanted.adapter) is not None
        if folder_stamp(entry.version.path) != stamp:
            return True
        return not entry.rejected and time.monotonic() - when > RETRY_AFTER_S

    async def _follow_locked(self, wanted: DesiredState) -> bool:
        """Activate `wanted`'s adapter here; False (and the lag recorded) when this replica cannot."""
        if not wanted.adapter_chosen:  # nothing to follow (None would mean the base model)
            return True
        target = wanted.adapter
        if target == self._active_key():
            self._clear_lag()
            return True
        if target is None:
            await self._set_base_active()
            self._clear_lag()
            return True
        entry = self._entries.get(target)
        if entry is None or (self._refused is not None and self._refused[1] is entry):
            await self._rescan_locked(apply_policy=False)  # arrived, or changed since refused
            entry = self._entries.get(target)
        if entry is None:
            self._note_lag(wanted, "not in this replica's store", None)
            return False
        try:
            await self._activate_locked(entry)
        except AdapterUnavailableError as e:
            self._note_lag(wanted, str(e), entry)
            return False
        self._clear_lag()
        log.info("following the desired state (generation %d): %s", wanted.generation, entry.version.label)
        return True

    def _note_lag(self, wanted: DesiredState, reason: str, entry) -> None:
        active = self._active.label if self._active is not None else None
        first = self._refused is None or self._refused[0] != wanted.key
        stamp = folder_stamp(entry.version.path) if entry is not None else None
        self._refused = (wanted.key, entry, stamp, time.monotonic())
        self.lag = {"kind": "adapter", "generation": wanted.generation, "desired": wanted.adapter_label,
                    "active": active, "reason": reason}
        fleet_metrics.set_lag("adapter", self.lag)
        (log.warning if first else log.debug)(
            "cannot follow the desired state (generation %d, %s): %s; still serving %s",
            wanted.generation, wanted.adapter_label, reason, active or "the base model")

    def _clear_lag(self) -> None:
        self.lag, self._refused = None, None
        fleet_metrics.set_lag("adapter", None)
