"""Ensemble bundles hot-loaded like adapters: which bundle version answers, and how it is swapped.

A bundle version is a folder `<ensembles>/<name>/<version>/` with its manifest written last
(app.ensemble.bundle). While running, a replica finds new versions at every poll (app.fleet.sync),
validates one before serving it (the stack matches its members, every member loads and warms up,
a knn member's index is on this machine: nothing may be missing, unlike at start-up, where a
replica serves what it can) and activates it by PRICER_ENSEMBLE_POLICY (`latest`, `best` by the
recorded cross-validated error, `manual`: only by an admin call), or follows the desired state
(app.fleet.desired) that an activation on any replica wrote. A refused version keeps the current
one answering and is reported as the lag, tried again only when the choice or its files change.

A swap is one reference switch in Extras: a request reads the bundle once and answers with it (its
`ensemble` field names it); the old bundle is closed once its last answer is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from app.adapters.store import folder_stamp, is_safe_name
from app.ensemble import policy
from app.ensemble.bundle import MANIFEST, find_bundles
from app.ensemble.service import DEFAULT_NAME, EnsembleService, load_ensemble
from app.fleet import desired
from app.fleet import metrics as fleet_metrics
from app.fleet.desired import DesiredState, GenerationConflict, StateError

log = logging.getLogger("pricer.ensemble")

RETIRE_GRACE_S = 2.0  # a request that read the old bundle just before the swap has started its answer by then


class UnknownEnsembleError(LookupError):
    """No such bundle version in the store (-> 404)."""


class EnsembleRefusedError(RuntimeError):
    """The version cannot be served here (-> 409); the message says why."""


def _read_manifest(folder: Path) -> dict:
    import json

    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class EnsembleManager:
    def __init__(self, settings, persist: bool = True, replica_id: str | None = None):
        self.settings, self.persist, self.replica_id = settings, persist, replica_id
        root = Path(settings.ensemble_dir) if settings.ensemble_dir else Path(settings.models_dir) / "ensembles" / DEFAULT_NAME
        self.pinned = (root / MANIFEST).is_file()  # PRICER_ENSEMBLE_DIR names one version: never swapped
        self.root = root.parent if self.pinned else root
        self.enabled = settings.estimator == "ensemble"
        self.extras = None  # app.api.answers.Extras, whose `ensemble` this manager swaps
        self.generation_seen = 0
        self.lag: dict | None = None
        self._lock = asyncio.Lock()
        self._known: set[str] = set()  # versions seen by discovery
        self._refusals: dict[str, tuple[tuple, str]] = {}  # version -> (files stamp, why), retried when files change
        self._refused: tuple | None = None  # (desired key, files stamp) of the choice not followed
        self._retiring: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ what answers
    @property
    def active(self) -> EnsembleService | None:
        return None if self.extras is None else self.extras.ensemble

    @property
    def active_label(self) -> str | None:
        return None if self.active is None else self.active.label

    def _active_key(self) -> tuple[str, str] | None:
        label = self.active_label
        return None if label is None else tuple(label.split("@", 1))

    def _folder(self, name: str, version: str) -> Path | None:
        if not (is_safe_name(name) and is_safe_name(version)):
            return None
        return self.root.parent / name / version

    def _versions(self) -> list[Path]:
        return find_bundles(self.root.parent, self.root.name)

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
        """Record what start-up loaded; publish it when nothing was chosen, or report the lag."""
        self.extras = extras
        self.generation_seen = wanted.generation
        if not self._known and self.enabled and not self.pinned:
            self._known = {p.name for p in await asyncio.to_thread(self._versions)}
        fleet_metrics.set_ensemble(self.active_label)
        if not self.enabled:
            return
        if wanted.ensemble is None:
            if self.active is not None and not self.pinned:
                await self._publish(self._active_key(), wanted.generation)
        elif wanted.ensemble != self._active_key():
            self._note_lag(wanted, self._why_not(wanted), None)

    def _why_not(self, wanted: DesiredState) -> str:
        if self.pinned:
            return f"pinned by PRICER_ENSEMBLE_DIR={self.settings.ensemble_dir}"
        folder = self._folder(*wanted.ensemble)
        if folder is None or not (folder / MANIFEST).is_file():
            return "not in this replica's store"
        return f"refused at start: {self.extras.reason if self.extras is not None else 'not loaded'}"

    # ------------------------------------------------------------------ reconciling
    async def reconcile(self, wanted: DesiredState) -> None:
        """Follow the desired bundle, then apply the policy to versions that appeared."""
        if not self.enabled:
            self.generation_seen = wanted.generation
            return
        async with self._lock:
            self.generation_seen = wanted.generation
            if wanted.ensemble is not None and wanted.ensemble != self._active_key():
                if await asyncio.to_thread(self._worth_retrying, wanted):
                    await self._follow_locked(wanted)
            elif wanted.ensemble is not None:
                self._clear_lag()
            if not self.pinned:
                await self._discover_locked(wanted)

    def _worth_retrying(self, wanted: DesiredState) -> bool:
        if self.pinned:
            if self.lag is None:
                self._note_lag(wanted, self._why_not(wanted), None)
            return False
        if self._refused is None or self._refused[0] != wanted.key:
            return True
        folder = self._folder(*wanted.ensemble)
        return folder is not None and folder_stamp(folder) != self._refused[1]

    async def _follow_locked(self, wanted: DesiredState) -> bool:
        folder = self._folder(*wanted.ensemble)
        if folder is None or not (folder / MANIFEST).is_file():
            self._note_lag(wanted, "not in this replica's store", folder)
            return False
        try:
            await self._swap_to(folder)
        except EnsembleRefusedError as e:
            self._note_lag(wanted, str(e), folder)
            return False
        self._clear_lag()
        log.info("following the desired state (generation %d): ensemble %s", wanted.generation, wanted.ensemble_label)
        return True

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
                await self._swap_to(Path(candidate["_path"]))
            except EnsembleRefusedError as e:
                log.warning("new ensemble version %s not activated: %s", candidate.get("version"), e)
                continue
            await self._publish(self._active_key(), wanted.generation)
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
                raise EnsembleRefusedError(f"pinned by PRICER_ENSEMBLE_DIR={self.settings.ensemble_dir}")
            if expect_generation is not None:
                found = await asyncio.to_thread(desired.read, self.settings.models_dir)
                if found.generation != expect_generation:
                    raise GenerationConflict(expect_generation, found)
            if (name, version) != self._active_key():
                await self._swap_to(folder)
            state = await self._publish((name, version), expect_generation, strict=True)
            self._clear_lag()
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
                "enabled": self.enabled, "generation": self.generation_seen, "converged": self.lag is None,
                "lag": self.lag, "versions": rows}

    # ------------------------------------------------------------------ internals
    async def _swap_to(self, folder: Path) -> None:
        """Load `folder` strictly (nothing missing) and make it answer; EnsembleRefusedError if not."""
        started = time.perf_counter()
        service, why = await asyncio.to_thread(load_ensemble, self.settings, folder)
        if service is not None and service.missing:
            why = "; ".join(f"member {m}: {r}" for m, r in service.missing.items())
            await service.close()
            service = None
        if service is None:
            self._refusals[folder.name] = (folder_stamp(folder), why)
            raise EnsembleRefusedError(f"{folder.parent.name}@{folder.name} was refused: {why}")
        self._refusals.pop(folder.name, None)
        old, self.extras.ensemble, self.extras.reason = self.active, service, ""
        fleet_metrics.set_ensemble(service.label)
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

    async def _publish(self, key, expect: int | None, strict: bool = False) -> DesiredState | None:
        if not self.persist:
            return None
        for _ in range(5):
            try:
                state = await asyncio.to_thread(desired.update, self.settings.models_dir, ensemble=key,
                                                expect_generation=expect, by=self.replica_id)
                break
            except GenerationConflict as e:
                if not strict and e.found.ensemble is None:  # the other write chose an adapter only: again over it
                    expect = e.found.generation
                    continue
                if strict:
                    raise
                log.info("ensemble choice not published (%s); the next poll follows the desired state", e)
                return None
            except StateError as e:
                if strict:
                    raise
                log.error("cannot publish the ensemble choice: %s", e)
                return None
        else:
            return None
        self.generation_seen = state.generation
        log.info("desired state generation %d: ensemble %s", state.generation, state.ensemble_label)
        return state

    def _note_lag(self, wanted: DesiredState, reason: str, folder: Path | None) -> None:
        first = self._refused is None or self._refused[0] != wanted.key
        self._refused = (wanted.key, folder_stamp(folder) if folder is not None else ())
        self.lag = {"kind": "ensemble", "generation": wanted.generation, "desired": wanted.ensemble_label,
                    "active": self.active_label, "reason": reason}
        fleet_metrics.set_lag("ensemble", self.lag)
        if first:
            log.warning("cannot follow the desired ensemble (generation %d, %s): %s; still serving %s",
                        wanted.generation, wanted.ensemble_label, reason, self.active_label or "the LLM alone")

    def _clear_lag(self) -> None:
        self.lag, self._refused = None, None
        fleet_metrics.set_lag("ensemble", None)

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
