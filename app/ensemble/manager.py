"""Ensemble bundles hot-loaded like adapters: which bundle version answers, and how it is swapped.

A bundle version is a folder `<ensembles>/<name>/<version>/` with its manifest written last
(app.ensemble.bundle). While running, a replica finds new versions at every poll (app.fleet.sync),
validates one before serving it (app.ensemble.swap: nothing may be missing, unlike at start-up,
where a replica serves what it can) and activates it by PRICER_ENSEMBLE_POLICY (`latest`, `best` by
the recorded cross-validated error, `manual`: only by an admin call), or follows the desired state
(app.versions.desired) that an activation on any replica wrote. This manager is the ensemble kind
of the version follower (app.versions.follower), which publishes the choice, reports the lag and
decides when a refused version is tried again (when the choice or its files change).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from app.ensemble import policy
from app.ensemble.bundle import MANIFEST, find_bundles
from app.ensemble.service import DEFAULT_NAME, EnsembleService
from app.ensemble.swap import EnsembleRefusedError, Swapper, set_active
from app.versions.desired import DesiredState, Version
from app.versions.folders import folder_stamp, is_safe_name
from app.versions.follower import Follower, Refused

log = logging.getLogger("pricer.ensemble")

__all__ = ["EnsembleManager", "EnsembleRefusedError", "UnknownEnsembleError"]


class UnknownEnsembleError(LookupError):
    """No such bundle version in the store (-> 404)."""


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class EnsembleManager:
    part = "ensemble"
    nothing = "the LLM alone"

    def __init__(self, settings, persist: bool = True, replica_id: str | None = None):
        self.settings, self.persist, self.replica_id = settings, persist, replica_id
        root = Path(settings.ensemble_dir) if settings.ensemble_dir else Path(settings.models_dir) / "ensembles" / DEFAULT_NAME
        self.pinned = (root / MANIFEST).is_file()  # PRICER_ENSEMBLE_DIR names one version: never swapped
        self.root = root.parent if self.pinned else root
        self.enabled = settings.estimator == "ensemble"
        self._lock = asyncio.Lock()
        self._known: set[str] = set()  # versions seen by discovery
        self._refusals: dict[str, tuple[tuple, str]] = {}  # version -> (files stamp, why), for the listing
        self._swapper = Swapper(settings, self._refusals)
        self.follower = Follower(self, self._lock, settings.models_dir, persist, replica_id)

    # ------------------------------------------------------------------ what answers
    @property
    def extras(self):
        """app.pricing.extras.Extras, whose `ensemble` this manager swaps."""
        return self._swapper.extras

    @property
    def active(self) -> EnsembleService | None:
        return self._swapper.active

    @property
    def active_label(self) -> str | None:
        return None if self.active is None else self.active.label

    @property
    def lag(self) -> dict | None:
        return self.follower.lag

    def _folder(self, name: str, version: str) -> Path | None:
        if not (is_safe_name(name) and is_safe_name(version)):
            return None
        return self.root.parent / name / version

    def _versions(self) -> list[Path]:
        return find_bundles(self.root.parent, self.root.name)

    # ------------------------------------------------------------------ the follower's kind
    def active_key(self) -> Version | None:
        label = self.active_label
        return None if label is None else tuple(label.split("@", 1))

    async def serve(self, target: Version) -> None:
        if self.pinned:
            raise Refused(self._pinned())
        folder = self._folder(*target)
        if folder is None or not (folder / MANIFEST).is_file():
            raise Refused("not in this replica's store")
        try:
            await self._swapper.swap_to(folder)
        except EnsembleRefusedError as e:
            raise Refused(str(e)) from None

    def fingerprint(self, target: Version) -> tuple:
        folder = self._folder(*target)
        return folder_stamp(folder) if folder is not None else ()

    def _pinned(self) -> str:
        return f"pinned by PRICER_ENSEMBLE_DIR={self.settings.ensemble_dir}"

    # ------------------------------------------------------------------ start
    def start_folder(self, wanted: DesiredState) -> Path | None:
        """The version to load at start (sync): the desired one if it is here, else the policy's."""
        if not self.enabled:
            return None
        if self.pinned:
            return Path(self.settings.ensemble_dir)
        if wanted.ensemble is not None:
            folder = self._folder(*wanted.ensemble)
            if folder is not None and (folder / MANIFEST).is_file():
                return folder
        versions = self._versions()
        self._known = {p.name for p in versions}
        manifests = [{**_read_manifest(p), "_path": str(p)} for p in versions]
        choice = policy.ranked(manifests, "best" if self.settings.ensemble_policy == "best" else "latest")
        return Path(choice[0]["_path"]) if choice else None

    async def attach(self, extras, wanted: DesiredState) -> None:
        """Record what start-up loaded (app.pricing.extras.Extras.load, from `start_folder`, which
        already fell back to the policy's choice); publish it when nothing was chosen, or report the
        lag (the next poll tries the desired version once itself)."""
        self._swapper.extras = extras
        self.follower.generation_seen = wanted.generation
        if not self._known and self.enabled and not self.pinned:
            self._known = {p.name for p in await asyncio.to_thread(self._versions)}
        set_active(self.active_label)
        if not self.enabled:
            return
        if wanted.ensemble is None:
            if self.active is not None and not self.pinned:
                await self.follower.publish(self.active_key(), wanted.generation)
        elif wanted.ensemble != self.active_key():
            self.follower.refuse(wanted, self._why_not(wanted), tried=False)

    def _why_not(self, wanted: DesiredState) -> str:
        if self.pinned:
            return self._pinned()
        folder = self._folder(*wanted.ensemble)
        if folder is None or not (folder / MANIFEST).is_file():
            return "not in this replica's store"
        return f"refused at start: {self.extras.reason if self.extras is not None else 'not loaded'}"

    # ------------------------------------------------------------------ reconciling
    async def reconcile(self, wanted: DesiredState) -> None:
        """Follow the desired bundle, then apply the policy to versions that appeared."""
        if not self.enabled:
            self.follower.generation_seen = wanted.generation
            return
        await self.follower.reconcile(wanted)
        if not self.pinned:
            async with self._lock:
                await self._discover_locked(wanted)

    async def _discover_locked(self, wanted: DesiredState) -> None:
        versions = await asyncio.to_thread(self._versions)
        new = [p for p in versions if p.name not in self._known]
        self._known.update(p.name for p in new)
        if not new or self.settings.ensemble_policy == "manual":
            return
        active = self.active.bundle.manifest if self.active is not None else None
        manifests = [{**_read_manifest(p), "_path": str(p)} for p in new]
        for candidate in policy.ranked(manifests, self.settings.ensemble_policy):
            if not policy.should_replace(self.settings.ensemble_policy, candidate, active):
                log.info("new ensemble version %s found, not activated (policy %s)", candidate.get("version"),
                         self.settings.ensemble_policy)
                continue
            try:
                await self._swapper.swap_to(Path(candidate["_path"]))
            except EnsembleRefusedError as e:
                log.warning("new ensemble version %s not activated: %s", candidate.get("version"), e)
                continue
            await self.follower.publish(self.active_key(), wanted.generation)
            return

    # ------------------------------------------------------------------ admin
    async def activate(self, name: str, version: str, expect_generation: int | None = None) -> dict:
        """Validate and swap here, then make it every replica's choice (the next generation)."""
        if not self.enabled:
            raise EnsembleRefusedError("PRICER_ESTIMATOR=llm: this replica serves no ensemble")
        async with self._lock:
            folder = self._folder(name, version)
            if folder is None or not (folder / MANIFEST).is_file():
                raise UnknownEnsembleError(f"no ensemble version {name}@{version}")
            if self.pinned and folder.resolve() != Path(self.settings.ensemble_dir).resolve():
                raise EnsembleRefusedError(self._pinned())

            async def swap() -> None:
                if (name, version) != self.active_key():
                    await self._swapper.swap_to(folder)

            state = await self.follower.choose_locked((name, version), expect_generation, swap)
            return {"active": self.active_label, "generation": state.generation if state else None}

    def describe(self) -> dict:
        rows = []
        for folder in self._versions() if self.enabled else []:
            manifest = _read_manifest(folder)
            label = f"{folder.parent.name}@{folder.name}"
            refusal = self._refusals.get(folder.name)
            status = "active" if label == self.active_label else ("refused" if refusal else "available")
            rows.append({"name": folder.parent.name, "version": folder.name, "status": status,
                         "reason": refusal[1] if refusal else None, "cv_mean_error": policy.cv_error(manifest),
                         "created_at": manifest.get("created_at")})
        return {"active": self.active_label, "policy": self.settings.ensemble_policy, "pinned": self.pinned,
                "enabled": self.enabled, **self.follower.status(), "versions": rows}

    async def close(self) -> None:
        await self._swapper.close()
