"""What keeps a served version honest after it passed validation (a mixin of AdapterManager):

- Its files are fingerprinted (size and sha256) when it is validated and compared before every load
  into the engine: a version whose files changed since is refused (status `rejected`), e.g. weights
  overwritten with NaN after an unload. A rescan that sees the files changed validates them afresh.
- An active version whose estimates fail `rollback_after_failures` times in a row is rolled back to
  the version active before it (or to the base model), marked rejected, and counted in
  pricer_adapter_rollbacks_total.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from app.adapters import metrics
from app.adapters.entry import Entry
from app.adapters.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST
from app.engine.base import EngineDeadError, EngineError

log = logging.getLogger(__name__)

CHECKED_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST)


def file_fingerprints(folder: Path) -> dict[str, list]:
    """{file name: [size, sha256]} for the files the engine and the checks read (missing: [-1, ""])."""
    prints: dict[str, list] = {}
    for name in CHECKED_FILES:
        path = Path(folder) / name
        try:
            with path.open("rb") as handle:
                prints[name] = [path.stat().st_size, hashlib.file_digest(handle, "sha256").hexdigest()]
        except OSError:
            prints[name] = [-1, ""]
    return prints


def changed_files(folder: Path, recorded: dict[str, list]) -> list[str]:
    now = file_fingerprints(folder)
    return [name for name in CHECKED_FILES if now.get(name) != recorded.get(name)]


class GuardMixin:
    """Needs the manager's `_entries`, `_active`, `_lock`, `settings`, `_reject`, `_activate_locked`,
    `_evict_excess` and `_set_base_active`."""

    _previous_key: tuple[str, str] | None = None

    async def _fingerprint(self, entry: Entry) -> None:
        entry.files = await asyncio.to_thread(file_fingerprints, entry.version.path)

    async def _verify_files(self, entry: Entry) -> str | None:
        """The reason to refuse loading `entry` (its files changed since validation), or None."""
        if entry.files is None:
            return None
        changed = await asyncio.to_thread(changed_files, entry.version.path, entry.files)
        return f"{', '.join(changed)} changed since validation (size or sha256); publish a new version instead" if changed else None

    def _note_outcome(self, entry: Entry, error: BaseException | None) -> None:
        """Called by every lease when its request ends."""
        if error is None:
            entry.failures = 0
            return
        if not isinstance(error, EngineError) or isinstance(error, EngineDeadError):
            return  # a client's mistake or a dead engine is not the adapter's fault
        entry.failures += 1
        limit = self.settings.rollback_after_failures
        if entry.failures >= limit and entry.ref is not None and entry.ref == self._active:
            entry.failures = 0
            self._schedule(self._roll_back(entry, f"{limit} estimates in a row failed ({error})"))

    async def _roll_back(self, entry: Entry, reason: str) -> None:
        async with self._lock:
            if entry.ref is None or entry.ref != self._active:
                return  # someone switched already
            failing = entry.version.label
            self._reject(entry, f"rolled back while active: {reason}")
            target = self._entries.get(self._previous_key) if self._previous_key else None
            restored = None
            if target is not None and not target.rejected and target is not entry:
                try:
                    await self._activate_locked(target)
                    restored = target.version.label
                except Exception as e:
                    log.error("rollback to %s failed: %s", target.version.label, e)
            if restored is None:
                await self._set_base_active()
            metrics.ADAPTER_ROLLBACKS.inc()
            log.error("adapter %s rolled back to %s: %s", failing, restored or "the base model", reason)
        await self._evict_excess(also=entry)
