"""Leases: which version answers one request, kept loaded until the request is done (a mixin of
AdapterManager), and how a pin ("name" or "name@version") resolves to a version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.adapters import metrics, policy
from app.adapters.entry import Entry
from app.adapters.store import parse_pin
from app.engine.base import AdapterRef


class UnknownAdapterError(LookupError):
    """No such adapter name or version in the store (-> 404)."""


class AdapterUnavailableError(RuntimeError):
    """The version exists but was rejected or cannot be loaded (-> 409); the message says why."""


class LeaseMixin:
    """Needs the manager's `_entries`, `_active`, `_tick`, `settings`, `served_point`,
    `_ensure_loaded`, `_note_outcome`, `_schedule` and `_evict_excess`."""

    @asynccontextmanager
    async def lease(self, pinned: str | None) -> AsyncIterator[AdapterRef | None]:
        """The version that answers one request, kept loaded until the request is done."""
        entry = await self._lease_entry(pinned)
        metrics.ADAPTER_REQUESTS.labels(adapter="" if entry is None else entry.version.name).inc()
        if entry is None:
            yield None
            return
        ref, error = entry.ref, None
        try:
            yield ref
        except BaseException as e:
            error = e
            raise
        finally:
            self._note_outcome(entry, error)  # app.adapters.guard: repeated failures roll back
            entry.leases -= 1
            if entry.leases == 0:
                self._schedule(self._evict_excess())

    async def _lease_entry(self, pinned: str | None) -> Entry | None:
        for _ in range(5):
            if pinned is None or pinned == "":
                ref = self._active
                if ref is None:
                    return None
                entry = self._entries[(ref.name, ref.version)]
            else:
                entry = self._resolve_pin(pinned)
                await self._ensure_loaded(entry)
            # No await between this check and the increment: an unload cannot slip in.
            if entry.ref is not None:
                entry.leases += 1
                entry.last_used = next(self._tick)
                return entry
        raise AdapterUnavailableError(f"adapter {pinned!r} was unloaded while being leased; retry")

    def _resolve_pin(self, pinned: str) -> Entry:
        name, version = parse_pin(pinned)
        if version is not None:
            entry = self._entries.get((name, version))
            if entry is None:
                raise UnknownAdapterError(f"no adapter version {name}@{version}")
            if entry.rejected:
                raise AdapterUnavailableError(f"{name}@{version} was rejected: {entry.rejected}")
            return entry
        if self._active is not None and self._active.name == name:
            return self._entries[(name, self._active.version)]
        rows = [e for e in self._entries.values() if e.version.name == name]
        if not rows:
            raise UnknownAdapterError(f"no adapter named {name!r}")
        usable = {e.version.key: e for e in rows if not e.rejected}
        if not usable:
            raise AdapterUnavailableError(f"every version of {name!r} was rejected")
        best = policy.ranked([e.version for e in usable.values()], self.settings.adapter_policy, self.served_point)[0]
        return usable[best.key]
