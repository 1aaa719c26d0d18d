"""app/runtime/vector_cache.py: vectors kept on disk by (namespace, key), shared by processes, and a
broken file bypassed (reported once), never a failure."""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from app.runtime.vector_cache import VectorCache, configured, text_key


def test_vectors_round_trip_as_float32_and_outlive_the_instance(tmp_path):
    path = tmp_path / "sub" / "vc.sqlite"
    vectors = {"a": np.arange(5, dtype=np.float32) / 3, "b": np.array([1e-30, -2.5, np.inf], dtype=np.float64)}
    VectorCache(path).put_many("ns", vectors)
    got = VectorCache(path).get_many("ns", ["b", "missing", "a", "a"])  # another process's view
    assert set(got) == {"a", "b"}
    assert got["a"].dtype == np.float32 and got["a"].tobytes() == vectors["a"].tobytes()
    assert got["b"].tolist() == vectors["b"].astype(np.float32).tolist()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_namespaces_are_kept_apart_and_a_put_replaces(tmp_path):
    cache = VectorCache(tmp_path / "vc.sqlite")
    cache.put_many("model-1", {"k": np.ones(3)})
    cache.put_many("model-2", {"k": np.zeros(4)})
    assert cache.get_many("model-1", ["k"])["k"].tolist() == [1, 1, 1]
    assert cache.get_many("model-2", ["k"])["k"].tolist() == [0, 0, 0, 0]
    assert cache.get_many("model-3", ["k"]) == {}
    cache.put_many("model-1", {"k": np.full(2, 7.0)})
    assert cache.get_many("model-1", ["k"])["k"].tolist() == [7, 7]


def test_many_keys_span_chunks(tmp_path):
    cache = VectorCache(tmp_path / "vc.sqlite")
    vectors = {text_key(str(i)): np.full(2, i, dtype=np.float32) for i in range(1000)}
    cache.put_many("ns", vectors)
    got = cache.get_many("ns", list(vectors))
    assert len(got) == 1000 and all(got[key].tolist() == vector.tolist() for key, vector in vectors.items())


def test_a_row_whose_bytes_do_not_match_its_length_is_not_returned(tmp_path):
    path = tmp_path / "vc.sqlite"
    cache = VectorCache(path)
    cache.put_many("ns", {"good": np.ones(4), "torn": np.ones(4)})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE vectors SET data = substr(data, 1, 10) WHERE key = 'torn'")
    assert set(cache.get_many("ns", ["good", "torn"])) == {"good"}


def test_a_broken_file_is_reported_once_and_bypassed(tmp_path, caplog):
    path = tmp_path / "vc.sqlite"
    path.write_bytes(b"this is not an SQLite database, just bytes " * 200)
    cache = VectorCache(path)
    with caplog.at_level(logging.WARNING, logger="app.runtime.vector_cache"):
        assert cache.get_many("ns", ["a"]) == {}
        cache.put_many("ns", {"a": np.ones(2)})
        assert cache.get_many("ns", ["a"]) == {}
    warnings = [r for r in caplog.records if r.name == "app.runtime.vector_cache"]
    assert len(warnings) == 1 and "unusable" in warnings[0].getMessage() and cache.broken
    assert path.read_bytes().startswith(b"this is not")  # left as it was


def test_one_cache_per_file_in_a_process_and_none_when_unset(tmp_path):
    assert configured(None) is None and configured("") is None and configured(Path("")) is None
    assert configured(tmp_path / "vc.sqlite") is configured(str(tmp_path / "vc.sqlite"))


def _write(args) -> None:
    path, worker = args
    cache = VectorCache(path)
    for batch in range(5):
        cache.put_many("ns", {f"{worker}-{batch}-{i}": np.full(64, worker, dtype=np.float32) for i in range(50)})


def test_several_processes_write_at_once_and_nothing_is_lost(tmp_path):
    """Three processes create one new file and write to it at once, five times over (SQLite answers
    "locked" at once, busy timeout or not, to a second process switching a new file to WAL)."""
    keys = [f"{w}-{b}-{i}" for w in range(3) for b in range(5) for i in range(50)]
    with ProcessPoolExecutor(3) as pool:
        for round_ in range(5):
            path = tmp_path / f"vc-{round_}.sqlite"
            list(pool.map(_write, [(path, worker) for worker in range(3)]))
            got = VectorCache(path).get_many("ns", keys)
            assert len(got) == len(keys) and all(got[key][0] == int(key[0]) for key in keys)


def test_switching_a_new_file_to_wal_waits_out_an_immediate_locked(monkeypatch):
    """The race the test above can hit only sometimes, made certain: the switch answers "locked" twice."""
    from app.runtime import vector_cache

    class Racing:
        def __init__(self):
            self.answers = [sqlite3.OperationalError("database is locked")] * 2

        def execute(self, sql):
            if self.answers:
                raise self.answers.pop()
            return sqlite3.connect(":memory:").execute("SELECT 'wal'")

    monkeypatch.setattr(vector_cache.time, "sleep", lambda s: None)
    racing = Racing()
    vector_cache._use_wal(racing)
    assert racing.answers == []
