"""The desired state: one small JSON file in the model store that every replica follows.

    {"generation": 7, "active": {"name": ..., "version": ...} | null, "ensemble": {...} | null, ...}

`active` is the adapter version every replica serves (null: the base model; the key absent: nobody
chose yet, each replica's policy decides and publishes). `ensemble` is the ensemble bundle version
(absent: not chosen). The generation grows by one with every write.

Writes are compare-and-set: under an exclusive lock on `.pricer-state.lock` (fcntl.flock; on NFS the
kernel maps it to a POSIX lock) the file is read, the generation checked when the caller asks, and
the next one written to a temporary name, fsynced, renamed over the old one and the folder fsynced
(app.runtime.atomic), so two activations on two replicas are ordered and a torn file is impossible.
Readers take no lock: a rename is atomic. A file written before generations existed (only
`active`) reads as generation 0.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.runtime.atomic import atomic_write_text

log = logging.getLogger(__name__)

STATE_FILE = ".pricer-state.json"
LOCK_FILE = ".pricer-state.lock"
FORMAT = 2
KEEP = object()  # update(): leave this part as it is

Version = tuple[str, str]
PARTS = ("adapter", "ensemble")  # what the file chooses: each a kind of versioned artifact


class StateError(RuntimeError):
    """The desired state cannot be read for a write, or cannot be written (the store is read-only)."""


class GenerationConflict(RuntimeError):
    """A compare-and-set write found another generation than the one expected."""

    def __init__(self, expected: int, found: DesiredState):
        super().__init__(f"the desired state is at generation {found.generation}, not {expected}")
        self.expected, self.found = expected, found


@dataclass(frozen=True)
class DesiredState:
    generation: int = 0
    adapter_chosen: bool = False  # False: no adapter chosen yet (each replica's policy decides)
    adapter: Version | None = None  # None with adapter_chosen: the base model
    ensemble: Version | None = None  # None: not chosen (each replica's policy decides)
    updated_at: str | None = None
    updated_by: str | None = None

    def chosen(self, part: str) -> bool:
        """Whether `part` ("adapter" or "ensemble") names a choice every replica follows."""
        return self.adapter_chosen if part == "adapter" else self.version(part) is not None

    def version(self, part: str) -> Version | None:
        """The (name, version) chosen for `part` (for "adapter", None once chosen: the base model)."""
        if part not in PARTS:
            raise ValueError(f"no part {part!r} in the desired state (one of {', '.join(PARTS)})")
        return getattr(self, part)

    def label(self, part: str) -> str | None:
        chosen = self.version(part)
        return None if chosen is None else f"{chosen[0]}@{chosen[1]}"

    @property
    def key(self) -> tuple:
        """What a replica compares to know whether anything changed (not only the generation: a
        store restored from a backup may go back in generations)."""
        return (self.generation, self.adapter_chosen, self.adapter, self.ensemble)

    def describe(self) -> dict:
        return {"generation": self.generation, "adapter": self.label("adapter"), "adapter_chosen": self.adapter_chosen,
                "ensemble": self.label("ensemble"), "updated_at": self.updated_at, "updated_by": self.updated_by}


def state_path(models_dir: Path) -> Path:
    return Path(models_dir) / STATE_FILE


def _version(value) -> Version | None:
    if isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("version"), str):
        return value["name"], value["version"]
    raise ValueError(f"not a {{name, version}} object: {value!r}")


def parse(data) -> DesiredState:
    """Raises ValueError for a file that is not a desired state."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    generation = data.get("generation", 0)  # written before generations: 0
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise ValueError(f"generation {generation!r} is not a whole number >= 0")
    adapter, ensemble = (None if data.get(key) is None else _version(data[key]) for key in ("active", "ensemble"))
    return DesiredState(generation, "active" in data, adapter, ensemble, data.get("updated_at"), data.get("updated_by"))


def _read_strict(models_dir: Path) -> DesiredState:
    path = state_path(models_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DesiredState()
    return parse(json.loads(text))


def read(models_dir: Path) -> DesiredState:
    """The desired state (generation 0 and nothing chosen when there is no file). An unreadable
    file (edited by hand) is logged and read as nothing chosen; writes refuse it (StateError)."""
    try:
        return _read_strict(models_dir)
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable desired state %s: %s", state_path(models_dir), e)
        return DesiredState()


@contextmanager
def _locked(models_dir: Path):
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(models_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _payload(state: DesiredState) -> dict:
    def named(version: Version | None) -> dict | None:
        return None if version is None else {"name": version[0], "version": version[1]}

    payload: dict = {"format": FORMAT, "generation": state.generation}
    if state.adapter_chosen:
        payload["active"] = named(state.adapter)
    if state.ensemble is not None:
        payload["ensemble"] = named(state.ensemble)
    return payload | {"updated_at": state.updated_at, "updated_by": state.updated_by}


def update(models_dir: Path, *, adapter=KEEP, ensemble=KEEP, expect_generation: int | None = None,
           by: str | None = None) -> DesiredState:
    """Write the next generation with `adapter` ((name, version), or None: the base model) and/or
    `ensemble` changed; the other part is kept. `expect_generation`: only if the file is still at that
    generation (else GenerationConflict, nothing written). Returns the state written."""
    try:
        with _locked(models_dir):
            try:
                current = _read_strict(models_dir)
            except ValueError as e:
                raise StateError(f"{state_path(models_dir)} is not a desired state ({e}); fix or remove it") from None
            if expect_generation is not None and current.generation != expect_generation:
                raise GenerationConflict(expect_generation, current)
            chosen = current.adapter_chosen or adapter is not KEEP
            def part(new, old):
                return old if new is KEEP else (None if new is None else tuple(new))

            new = DesiredState(current.generation + 1, chosen, part(adapter, current.adapter), part(ensemble, current.ensemble),
                               datetime.now(UTC).isoformat(timespec="milliseconds"), by)
            atomic_write_text(state_path(models_dir), json.dumps(_payload(new), indent=2) + "\n")
            return new
    except OSError as e:
        raise StateError(f"cannot write the desired state in {models_dir}: {e}") from e
