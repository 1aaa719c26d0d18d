"""The adapter kind of the version follower (app.versions.follower), a mixin of AdapterManager: how
this replica activates the version the desired state's `adapter` part names (None: the base model),
what makes a refused one worth trying again (its files), and the policy's choice at start.
Following, publishing (compare-and-set), the lag and the retry rules are the follower's.

- At start a replica serves the chosen version; when nothing is chosen yet it takes its policy's
  choice among PRICER_DEFAULT_ADAPTER's versions and publishes it.
- A refusal that was no rejection (the engine could not load it) is transient: tried again after
  app.versions.follower.RETRY_AFTER_S; a rejection only once the version's files change.
"""

from __future__ import annotations

import asyncio
import logging

from app.adapters import metrics, policy
from app.adapters.leases import AdapterUnavailableError
from app.adapters.store import folder_stamp, version_folder
from app.versions import desired
from app.versions.desired import DesiredState, Version
from app.versions.follower import Follower, Refused

log = logging.getLogger(__name__)


class FollowMixin:
    """Needs the manager's `_entries`, `_active`, `settings`, `adapters_dir`, `served_point`,
    `_rescan_locked`, `_activate_locked` and `_set_base_active`; sets `follower`."""

    part = "adapter"
    nothing = "the base model"
    follower: Follower

    @property
    def lag(self) -> dict | None:
        """{"kind", "generation", "desired", "active", "reason"} while this replica cannot follow."""
        return self.follower.lag

    async def reconcile(self, wanted: DesiredState) -> None:
        await self.follower.reconcile(wanted)

    # ------------------------------------------------------------------ the follower's kind
    def active_key(self) -> Version | None:
        return None if self._active is None else (self._active.name, self._active.version)

    async def serve(self, target: Version | None) -> None:
        if target is None:
            await self._set_base_active()
            return
        entry = self._entries.get(target)
        if entry is None or entry.rejected:  # arrived since the last scan, or changed since rejected
            await self._rescan_locked(apply_policy=False)
            entry = self._entries.get(target)
        if entry is None:
            raise Refused("not in this replica's store")
        try:
            await self._activate_locked(entry)
        except AdapterUnavailableError as e:
            raise Refused(str(e), transient=not entry.rejected) from None

    def fingerprint(self, target: Version) -> tuple | None:
        """Its files' stamp; None while it is not (yet) a version in this replica's store."""
        folder = version_folder(self.adapters_dir, *target)
        return None if folder is None else folder_stamp(folder)

    # ------------------------------------------------------------------ start
    async def _restore_locked(self) -> None:
        wanted = await asyncio.to_thread(desired.read, self.settings.models_dir)
        await self.follower.start_locked(wanted, self._activate_by_policy_locked)

    async def _activate_by_policy_locked(self) -> Version | None:
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
