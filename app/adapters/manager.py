"""The adapter manager: what the service asks for an adapter, and how versions are swapped.

Every request takes a lease on the version that answers it; activation loads the new version
under a fresh lora_id, switches new requests to it in one step, and unloads an old version only
once its last lease is released (keeping `keep_loaded` versions resident for quick rollback).
Activations and store rescans are serialized by one lock; requests never wait for that lock.
Leases and pins: app/adapters/leases.py; file re-checks and automatic rollback: app/adapters/guard.py;
following the desired state that every replica shares, and publishing to it: app/versions/follower.py,
with this kind's part of it in app/adapters/follow.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path

from app.adapters import metrics, policy
from app.adapters.entry import Entry, describe
from app.adapters.follow import FollowMixin
from app.adapters.guard import GuardMixin
from app.adapters.leases import AdapterUnavailableError, LeaseMixin, UnknownAdapterError
from app.adapters.store import AdapterVersion, scan
from app.adapters.validation import AdapterRejected, BaseFacts, check_static, read_base_facts, smoke_check
from app.config import Settings
from app.engine.base import AdapterLoadError, AdapterRef, Engine
from app.versions.follower import Follower

log = logging.getLogger(__name__)


# One counter per process: managers that share an engine (tests, a restarted app) never reuse an id.
_LORA_IDS = itertools.count(1)


class AdapterManager(LeaseMixin, GuardMixin, FollowMixin):
    def __init__(self, settings: Settings, engine: Engine, base_dir: Path, persist: bool = True,
                 replica_id: str | None = None):
        """`persist` False: never writes the desired state (an in-process reader such as the llm
        estimator resolves exactly as the service would, without changing what replicas serve).
        `replica_id`: who wrote a generation (app.fleet.heartbeat.replica_id)."""
        self.settings, self.persist, self.replica_id, self.engine = settings, persist, replica_id, engine
        self.base_dir, self.adapters_dir = Path(base_dir), Path(settings.adapters_dir)
        self._entries: dict[tuple[str, str], Entry] = {}
        self._active: AdapterRef | None = None
        self._lock = asyncio.Lock()
        self._tick = itertools.count(1)
        self._base: BaseFacts | None = None
        self._tasks: set[asyncio.Task] = set()
        self._watcher = None
        self.follower = Follower(self, self._lock, settings.models_dir, persist, replica_id)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.adapters_dir.mkdir(parents=True, exist_ok=True)
        self._base = await asyncio.to_thread(read_base_facts, self.base_dir)
        async with self._lock:
            await self._rescan_locked(apply_policy=False)
            await self._restore_locked()
        if self.settings.watch_adapters:
            from app.adapters.watcher import StoreWatcher

            self._watcher = StoreWatcher(self.adapters_dir, self.rescan, self.settings.watch_poll_seconds)
            await self._watcher.start()

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._active = None
        for entry in self._entries.values():
            ref, entry.ref = entry.ref, None
            if ref is not None:
                try:
                    await self.engine.remove_adapter(ref)
                except Exception as e:  # shutting down: log, go on
                    log.warning("unloading %s at shutdown failed: %s", ref.label, e)

    # ------------------------------------------------------------------ serving
    @property
    def active(self) -> AdapterRef | None:
        return self._active

    @property
    def served_point(self) -> str | None:
        """The point rule the engine answers with (its serving spec's); `best` ranks by it."""
        spec = getattr(self.engine, "spec", None)
        return spec.point_rule if spec is not None else None

    def _has_index(self) -> bool:
        """Whether the engine's prompts can carry comparables (an index is attached to its spec)."""
        spec = getattr(self.engine, "spec", None)
        return getattr(spec, "index", None) is not None

    # ------------------------------------------------------------------ admin
    def snapshot(self) -> list[dict]:
        return [self._describe(e) for _, e in sorted(self._entries.items())]

    async def activate(self, name: str, version: str, expect_generation: int | None = None) -> dict:
        """Validate and activate here, then make it every replica's choice (the next generation of the
        desired state, in the row as `generation`). `expect_generation`: only over that one
        (app.versions.desired.GenerationConflict otherwise, nothing activated)."""
        async with self._lock:
            entry = self._entries.get((name, version))
            if entry is None:  # arrived since the last scan?
                await self._rescan_locked(apply_policy=False)
                entry = self._entries.get((name, version))
            if entry is None:
                raise UnknownAdapterError(f"no adapter version {name}@{version}")
            state = await self.follower.choose_locked(entry.version.key, expect_generation,
                                                      lambda: self._activate_locked(entry))
            return {**self._describe(entry), "generation": state.generation if state else None}

    async def unload(self, name: str, version: str) -> None:
        entry = self._entries.get((name, version))
        if entry is None:
            raise UnknownAdapterError(f"no adapter version {name}@{version}")
        if self._active is not None and self._active == entry.ref:
            raise AdapterUnavailableError(f"{name}@{version} is active; activate another version before unloading it")
        entry.last_used = -1  # first in line for eviction; unloaded now, or when its last lease ends
        await self._evict_excess(also=entry)

    async def rescan(self) -> None:
        """Pick up versions that appeared (the watcher calls this) and apply the policy to them."""
        async with self._lock:
            await self._rescan_locked(apply_policy=True)

    # ------------------------------------------------------------------ internals
    async def _rescan_locked(self, apply_policy: bool) -> None:
        found = await asyncio.to_thread(scan, self.adapters_dir)
        seen = {v.key for v in found}
        new = [v for v in found if v.key not in self._entries or self._changed_since_rejected(v)]
        for gone in [k for k, e in self._entries.items() if k not in seen and e.ref is None]:
            del self._entries[gone]
        for version in new:
            entry = self._entries[version.key] = Entry(version)
            await self._check(entry)
            log.info("adapter version found: %s (%s)", version.label, entry.rejected or "ok")
        if apply_policy and new:
            await self._apply_policy_locked([self._entries[v.key] for v in new])

    def _changed_since_rejected(self, version: AdapterVersion) -> bool:
        """A rejected version whose files changed (e.g. a plain `cp -r` that wrote the manifest
        before the weights) is examined again rather than rejected for good."""
        entry = self._entries[version.key]
        return bool(entry.rejected) and entry.ref is None and entry.version.stamp != version.stamp

    async def _apply_policy_locked(self, new: list[Entry]) -> None:
        mode = self.settings.adapter_policy
        if mode == "manual":
            return
        tracked = self._active.name if self._active else (self.settings.default_adapter or None)
        for entry in sorted(new, key=lambda e: e.version.version):
            if entry.rejected or (tracked and entry.version.name != tracked):
                continue
            try:
                await self._ensure_loaded(entry)  # full validation, smoke check included
            except AdapterUnavailableError as e:
                log.warning("new version %s not activated: %s", entry.version.label, e)
                continue
            active = self._entries[(self._active.name, self._active.version)].version if self._active else None
            if policy.should_replace(mode, entry.version, active, self.served_point):
                await self._activate_locked(entry)
                await self.follower.publish(entry.version.key, self.follower.generation_seen)
            else:
                log.info("new version %s loaded, not activated (policy %s)", entry.version.label, mode)
        await self._evict_excess()

    async def _activate_locked(self, entry: Entry) -> None:
        started = time.perf_counter()
        ref = await self._ensure_loaded(entry)
        key = (ref.name, ref.version)
        previous, self._active = self._active, ref
        if previous is not None and previous != ref:
            self._previous_key = (previous.name, previous.version)
        entry.last_used = next(self._tick)
        metrics.set_active(*key)
        metrics.ADAPTER_SWAP_SECONDS.observe(time.perf_counter() - started)
        log.info("active adapter: %s (was %s)", ref.label, previous.label if previous else "the base model")
        self._schedule(self._evict_excess())

    async def _check(self, entry: Entry) -> None:
        if entry.checked or entry.rejected:
            return
        await self._fingerprint(entry)  # before the checks: a change after them is caught at load
        try:
            facts = await asyncio.to_thread(check_static, entry.version, self.adapters_dir, self._base,
                                            self.settings.max_lora_rank, self._has_index())
        except AdapterRejected as e:
            self._reject(entry, str(e))
            return
        entry.checked = True
        entry.comparables = facts["comparables"]

    async def _set_base_active(self) -> None:
        self._active = None
        metrics.set_active(None, None)

    def _reject(self, entry: Entry, reason: str) -> None:
        entry.rejected = reason
        metrics.ADAPTER_LOADS.labels(result="rejected").inc()
        metrics.ADAPTER_REJECTED.set(sum(1 for e in self._entries.values() if e.rejected))
        log.warning("adapter version %s rejected: %s", entry.version.label, reason)

    async def _ensure_loaded(self, entry: Entry) -> AdapterRef:
        async with entry.load_lock:
            if entry.ref is not None:
                return entry.ref
            await self._check(entry)
            if entry.rejected:
                raise AdapterUnavailableError(f"{entry.version.label} was rejected: {entry.rejected}")
            v = entry.version
            changed = await self._verify_files(entry)
            if changed:
                self._reject(entry, changed)
                raise AdapterUnavailableError(f"{v.label} was rejected: {changed}")
            ref = AdapterRef(v.name, v.version, v.path.resolve(), next(_LORA_IDS), entry.comparables)
            try:
                await self.engine.add_adapter(ref)
            except AdapterLoadError as e:
                self._reject(entry, f"the engine refused it: {e}")
                raise AdapterUnavailableError(f"{v.label} was rejected: {entry.rejected}") from None
            except Exception as e:
                metrics.ADAPTER_LOADS.labels(result="failed").inc()
                raise AdapterUnavailableError(f"{v.label} could not be loaded: {e}") from e
            try:  # at every load, not only the first: the engine must price with what it loaded
                entry.smoked = await smoke_check(self.engine, ref, self.settings.smoke_items)
            except AdapterRejected as e:
                await self._remove(ref)
                self._reject(entry, str(e))
                raise AdapterUnavailableError(f"{v.label} was rejected: {e}") from None
            entry.ref = ref
            entry.last_used = next(self._tick)
            metrics.ADAPTER_LOADS.labels(result="ok").inc()
            log.info("adapter %s loaded (lora_id %d)", v.label, ref.lora_id)
        self._schedule(self._evict_excess())
        return ref

    async def _evict_excess(self, also: Entry | None = None) -> None:
        """Unload versions beyond keep_loaded (least recently used first, never the active one,
        never one with leases: its last lease schedules this again)."""
        loaded = [e for e in self._entries.values() if e.ref is not None and e.ref != self._active]
        loaded.sort(key=lambda e: e.last_used, reverse=True)
        room = max(0, self.settings.keep_loaded - (1 if self._active else 0))
        excess = loaded[room:]
        if also is not None and also.ref is not None and also not in excess:
            excess.append(also)
        for entry in excess:
            if entry.leases == 0 and entry.ref is not None and entry.ref != self._active:
                ref, entry.ref = entry.ref, None  # before any await: new leases load it afresh
                await self._remove(ref)

    async def _remove(self, ref: AdapterRef) -> None:
        try:
            await self.engine.remove_adapter(ref)
            log.info("adapter %s unloaded (lora_id %d)", ref.label, ref.lora_id)
        except Exception as e:
            log.warning("unloading %s failed: %s", ref.label, e)

    def _schedule(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _describe(self, entry: Entry) -> dict:
        return describe(entry, self._active)
