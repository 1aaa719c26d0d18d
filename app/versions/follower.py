"""One follower for every kind of versioned artifact: follow the desired state's choice of that kind,
publish this replica's choice to it, report the lag, and decide when a refused choice is tried again.

- Publishing is compare-and-set: over the generation the caller read (`expect`). A write that lost
  to one choosing only another part is tried again over it; one that lost to a choice of this part
  is followed (strict, for the admin caller: the conflict is raised). A store that cannot be written
  is logged and this replica keeps serving (strict: raised).
- Every poll (app.fleet.sync) it reconciles: a new choice is activated here. A choice this replica
  refuses keeps the current version serving and is recorded as the lag (the kind's listing, /readyz,
  pricer_desired_state_lag). It is tried again only when the choice changes or the kind's fingerprint
  of that version does (its files), or, for a transient refusal (a failure that was no rejection),
  after RETRY_AFTER_S; never on every poll: no flapping, one warning.

A kind (the `Kind` protocol) supplies only which part of the desired state it follows and how to
activate one version of it; the rest is here. The next kind (an index, a second base model) is a
field for its part in app.versions.desired and one class with `part`, `nothing`, `active_key`,
`serve` and `fingerprint` (app.adapters.follow and app.ensemble.manager are the two so far).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.versions import desired, metrics
from app.versions.desired import DesiredState, GenerationConflict, StateError, Version

log = logging.getLogger(__name__)

RETRY_AFTER_S = 60.0
PUBLISH_TRIES = 5


class Refused(Exception):
    """The kind cannot serve that version here; `reason` says why. `transient`: no rejection (e.g. the
    engine failed to load it), so it is tried again after RETRY_AFTER_S even if nothing changed."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.reason, self.transient = reason, transient


class Kind(Protocol):
    part: str  # the desired state's part ("adapter", "ensemble"); also the lag's kind
    nothing: str  # what answers while no version of it is active ("the base model")

    def active_key(self) -> Version | None: ...

    async def serve(self, target: Version | None) -> None:
        """Make `target` active here (called under the lock); Refused when it cannot be."""

    def fingerprint(self, target: Version) -> Hashable:
        """What, once changed, makes a refused `target` worth trying again (its files; sync I/O)."""


@dataclass(frozen=True)
class Refusal:
    key: tuple  # the desired state's key when refused
    fingerprint: Hashable  # the kind's, when refused; None: not tried here yet (the next poll tries)
    transient: bool
    at: float  # time.monotonic()


class Follower:
    def __init__(self, kind: Kind, lock: asyncio.Lock, models_dir: Path, persist: bool = True,
                 replica_id: str | None = None):
        """`lock`: the kind's, held while activating. `persist` False: never writes the desired state
        (an in-process reader resolves as the service would, without changing what replicas serve)."""
        self.kind, self.part, self.lock = kind, kind.part, lock
        self.models_dir, self.persist, self.replica_id = models_dir, persist, replica_id
        self.generation_seen = 0
        self.lag: dict | None = None  # {"kind", "generation", "desired", "active", "reason"} while lagging
        self._refused: Refusal | None = None

    def status(self) -> dict:
        """What the kind's listing and /readyz say about the desired state."""
        return {"generation": self.generation_seen, "converged": self.lag is None, "lag": self.lag}

    def named(self, label: str | None) -> str:
        return f"{self.part} {label}" if label else self.kind.nothing

    def _active_label(self) -> str | None:
        key = self.kind.active_key()
        return None if key is None else f"{key[0]}@{key[1]}"

    # ------------------------------------------------------------------ start
    async def start_locked(self, wanted: DesiredState, by_policy: Callable[[], Awaitable[Version | None]]) -> None:
        """Serve the desired version; when none is chosen (or it cannot be served here) the policy's
        choice (`by_policy` activates it and returns it), published only when none was chosen."""
        self.generation_seen = wanted.generation
        if wanted.chosen(self.part):
            if wanted.version(self.part) is None:
                log.info("desired state (generation %d): %s", wanted.generation, self.kind.nothing)
            if await self.follow_locked(wanted):
                return
        chosen = await by_policy()
        if not wanted.chosen(self.part):
            await self.publish(chosen, wanted.generation)

    # ------------------------------------------------------------------ publishing
    async def choose_locked(self, key: Version | None, expect: int | None,
                            activate: Callable[[], Awaitable[object]]) -> DesiredState | None:
        """An admin's choice: only over generation `expect` (GenerationConflict before anything is
        activated), then `activate()` here, then published (strict: a conflict or a store that
        cannot be written is raised)."""
        if expect is not None and self.persist:
            found = await asyncio.to_thread(desired.read, self.models_dir)
            if found.generation != expect:
                raise GenerationConflict(expect, found)
        await activate()
        return await self.publish(key, expect, strict=True)

    async def publish(self, key: Version | None, expect: int | None, strict: bool = False) -> DesiredState | None:
        """Write `key` as every replica's choice of this part (the next generation); the state written,
        or the winner's after a lost compare-and-set, or None when nothing was written."""
        if not self.persist:
            return None
        for _ in range(PUBLISH_TRIES):
            try:
                state = await asyncio.to_thread(desired.update, self.models_dir, expect_generation=expect,
                                                by=self.replica_id, **{self.part: key})
                break
            except GenerationConflict as e:
                if strict:
                    raise
                if not e.found.chosen(self.part):  # the other write chose another part only: again over it
                    expect = e.found.generation
                    continue
                log.info("another replica chose first (generation %d): following it", e.found.generation)
                self.generation_seen = e.found.generation
                await self.follow_locked(e.found)
                return e.found
            except StateError as e:
                if strict:
                    raise
                log.error("cannot publish the chosen %s version: %s", self.part, e)
                return None
        else:
            log.warning("the chosen %s version was not published (the desired state kept changing)", self.part)
            return None
        self.generation_seen = state.generation
        self.clear_lag()
        log.info("desired state generation %d: %s", state.generation, self.named(state.label(self.part)))
        return state

    # ------------------------------------------------------------------ reconciling
    async def reconcile(self, wanted: DesiredState) -> None:
        """Bring this replica to `wanted` (called every poll; cheap when nothing changed)."""
        if not wanted.chosen(self.part):  # each replica's policy decides
            self.generation_seen = wanted.generation
            return
        if wanted.version(self.part) == self.kind.active_key():
            if self.lag is not None:
                self.clear_lag()
            self.generation_seen = wanted.generation
            return
        if self.lag is not None and not await asyncio.to_thread(self._worth_retrying, wanted):
            self.generation_seen = wanted.generation
            return
        before = self.generation_seen
        async with self.lock:
            if self.generation_seen != before and wanted.generation < self.generation_seen:
                # Read before an activation that held the lock published a newer choice: following
                # this one would undo it until the next poll (and answer under a version no longer chosen).
                return
            self.generation_seen = wanted.generation
            await self.follow_locked(wanted)

    def _worth_retrying(self, wanted: DesiredState) -> bool:
        refused = self._refused
        if refused is None or refused.key != wanted.key:
            return True
        if self.kind.fingerprint(wanted.version(self.part)) != refused.fingerprint:
            return True
        return refused.transient and time.monotonic() - refused.at > RETRY_AFTER_S

    async def follow_locked(self, wanted: DesiredState) -> bool:
        """Activate `wanted`'s version of this part here; False (and the lag recorded) when this
        replica cannot."""
        if not wanted.chosen(self.part):
            return True
        target = wanted.version(self.part)
        if target != self.kind.active_key():
            try:
                await self.kind.serve(target)
            except Refused as e:
                self.refuse(wanted, e.reason, transient=e.transient)
                return False
            log.info("following the desired state (generation %d): %s", wanted.generation,
                     self.named(wanted.label(self.part)))
        self.clear_lag()
        return True

    # ------------------------------------------------------------------ lag
    def refuse(self, wanted: DesiredState, reason: str, transient: bool = False, tried: bool = True) -> None:
        """Record that this replica does not serve `wanted`'s choice, and why (`tried` False: it did
        not try it itself, e.g. its start-up loaded another version: the next poll tries once)."""
        active = self._active_label()
        first = self._refused is None or self._refused.key != wanted.key
        target = wanted.version(self.part)
        fingerprint = self.kind.fingerprint(target) if tried and target is not None else None
        self._refused = Refusal(wanted.key, fingerprint, transient, time.monotonic())
        self.lag = {"kind": self.part, "generation": wanted.generation, "desired": wanted.label(self.part),
                    "active": active, "reason": reason}
        metrics.set_lag(self.part, self.lag)
        (log.warning if first else log.debug)(
            "cannot follow the desired state (generation %d, %s): %s; still serving %s",
            wanted.generation, self.named(wanted.label(self.part)), reason, active or self.kind.nothing)

    def clear_lag(self) -> None:
        self.lag, self._refused = None, None
        metrics.set_lag(self.part, None)
