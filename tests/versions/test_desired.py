"""The desired state file: generations, compare-and-set, old files, torn writes, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from app.adapters.state import load_active, save_active
from app.versions import desired
from app.versions.desired import GenerationConflict, StateError


def test_no_file_is_generation_zero_with_nothing_chosen(tmp_path):
    state = desired.read(tmp_path)
    assert state.generation == 0 and not state.adapter_chosen and state.ensemble is None
    assert load_active(tmp_path) is False


def test_an_old_state_file_reads_as_generation_zero(tmp_path):
    (tmp_path / desired.STATE_FILE).write_text(json.dumps(
        {"active": {"name": "pa", "version": "v1"}, "updated_at": "2026-11-28T00:00:00+00:00"}))
    state = desired.read(tmp_path)
    assert (state.generation, state.adapter_chosen, state.adapter) == (0, True, ("pa", "v1"))
    # the next write is generation 1 and keeps what it does not change
    written = desired.update(tmp_path, ensemble=("pricer-ensemble", "e1"))
    assert (written.generation, written.adapter, written.ensemble) == (1, ("pa", "v1"), ("pricer-ensemble", "e1"))
    (tmp_path / desired.STATE_FILE).write_text('{"active": null}')  # the base model, before generations
    assert desired.read(tmp_path).adapter_chosen and load_active(tmp_path) is None


def test_generations_only_grow_and_parts_are_kept(tmp_path):
    generations = [save_active(tmp_path, ("pa", f"v{i}")) for i in range(3)]
    assert generations == [1, 2, 3]
    state = desired.update(tmp_path, ensemble=("e", "1"), by="replica-a")
    assert (state.generation, state.adapter, state.updated_by) == (4, ("pa", "v2"), "replica-a")
    assert desired.update(tmp_path, adapter=None).adapter is None  # the base model, chosen
    assert desired.read(tmp_path).ensemble == ("e", "1") and load_active(tmp_path) is None


def test_compare_and_set_refuses_a_stale_generation(tmp_path):
    desired.update(tmp_path, adapter=("pa", "v1"))
    with pytest.raises(GenerationConflict) as raised:
        desired.update(tmp_path, adapter=("pa", "v2"), expect_generation=0)
    assert raised.value.found.generation == 1
    assert desired.read(tmp_path).adapter == ("pa", "v1")  # nothing written
    assert desired.update(tmp_path, adapter=("pa", "v2"), expect_generation=1).generation == 2


def test_an_unreadable_file_is_not_overwritten(tmp_path):
    (tmp_path / desired.STATE_FILE).write_text("{not json")
    assert desired.read(tmp_path).generation == 0  # readers go on
    with pytest.raises(StateError):
        desired.update(tmp_path, adapter=("pa", "v1"))
    assert (tmp_path / desired.STATE_FILE).read_text() == "{not json"


def test_a_crash_mid_write_leaves_the_previous_state(tmp_path, monkeypatch):
    desired.update(tmp_path, adapter=("pa", "v1"))
    before = (tmp_path / desired.STATE_FILE).read_text()
    real_fsync = os.fsync

    def crash(fd):  # the process dies after half the bytes reached the temporary file
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        desired.update(tmp_path, adapter=("pa", "v2"))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert (tmp_path / desired.STATE_FILE).read_text() == before
    assert desired.read(tmp_path).adapter == ("pa", "v1")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind
    assert desired.update(tmp_path, adapter=("pa", "v2")).generation == 2


def _writer(models_dir, name, count):
    for i in range(count):
        desired.update(models_dir, adapter=(name, f"v{i}"), by=name)


def test_concurrent_writers_in_processes_never_lose_a_generation(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(tmp_path, f"w{n}", 25)) for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    state = desired.read(tmp_path)
    assert state.generation == 75  # every read-check-write was serialized by the lock
    assert state.adapter[1] == "v24"
