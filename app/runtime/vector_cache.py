"""An opt-in, on-disk cache of per-item float32 vectors (PRICER_VECTOR_CACHE), so that rebuilding
models over the same texts (a learning-curve sweep, several seeds) does not recompute embeddings
and hidden-state features. One SQLite file, keyed by (namespace, key): the namespace names what
made the vector (model fingerprint and configuration), so another configuration never reads them.

Several processes may share the file: WAL mode, a busy timeout, each write a short transaction, a
connection per call (nothing is carried across a fork). Values are raw little-endian float32 bytes
whose length is checked against the stored dimension on read; nothing is unpickled. A file that
cannot be opened or read as this cache is reported once and then bypassed: a cache never fails
the work it is in front of."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CHUNK = 256  # keys per SELECT and rows per write transaction: short locks, under SQLite's variable limit
BUSY_TIMEOUT_S = 30.0
_SCHEMA = ("CREATE TABLE IF NOT EXISTS vectors (namespace TEXT NOT NULL, key TEXT NOT NULL, "
           "dim INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID")


def text_key(text: str) -> str:
    """The key of an exact text (sha1 of its UTF-8, as app.index.minilm's in-memory cache keys it)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class VectorCache:
    """`get_many(namespace, keys)` -> the vectors held; `put_many(namespace, {key: vector})` stores."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.broken = False
        self._ready = False
        self._lock = threading.Lock()

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The vectors held for these keys (read-only float32 arrays); keys not held are left out."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        with self._connection() as conn:
            if conn is None:
                return {}
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start:start + CHUNK]
                rows = conn.execute(
                    f"SELECT key, dim, data FROM vectors WHERE namespace = ? AND key IN ({','.join('?' * len(chunk))})",
                    [namespace, *chunk]).fetchall()
                for key, dim, data in rows:
                    if isinstance(data, bytes) and isinstance(dim, int) and len(data) == 4 * dim:
                        found[key] = np.frombuffer(data, dtype="<f4")
                    else:  # a torn or foreign row: recomputed (and rewritten) by the caller
                        log.debug("vector cache %s: bad row %s/%s ignored", self.path, namespace, key)
        return found

    def put_many(self, namespace: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store (or replace) these vectors, CHUNK rows a transaction."""
        rows = [(namespace, key, int(flat.size), flat.tobytes())
                for key, vector in vectors.items()
                for flat in [np.ascontiguousarray(vector, dtype="<f4").reshape(-1)]]
        with self._connection() as conn:
            if conn is None:
                return
            for start in range(0, len(rows), CHUNK):
                with conn:  # one transaction, committed on leaving
                    conn.executemany(
                        "INSERT OR REPLACE INTO vectors (namespace, key, dim, data) VALUES (?, ?, ?, ?)",
                        rows[start:start + CHUNK])

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection | None]:
        """A fresh connection, or None once the file is known broken. A busy file skips this one call
        (the work goes on uncached); any other SQLite or file error disables the cache, reported once."""
        conn = None
        if not self.broken:
            try:
                conn = self._open()
            except (sqlite3.Error, OSError) as error:
                self._failed(error)
        if conn is None:
            yield None
            return
        try:
            yield conn
        except (sqlite3.Error, OSError) as error:
            self._failed(error)
        finally:
            conn.close()

    def _open(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # The default isolation level: `with conn:` around DML is one transaction, committed on leaving.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            with self._lock:
                if not self._ready:
                    _use_wal(conn)
                    conn.execute(_SCHEMA)
                    conn.commit()
                    self._ready = True
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
            return conn
        except BaseException:
            conn.close()
            raise

    def _failed(self, error: Exception) -> None:
        if isinstance(error, sqlite3.OperationalError) and ("locked" in str(error) or "busy" in str(error)):
            log.warning("vector cache %s busy, skipped this once: %s", self.path, error)
            return
        with self._lock:
            if not self.broken:
                self.broken = True
                log.warning("vector cache %s unusable, bypassed from now on (delete it to start afresh): %s",
                            self.path, error)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL. The switch needs the file alone and SQLite answers "locked" at once,
    without waiting out the busy timeout, while another process switches it too: so waited for here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()  # a file system without WAL keeps its mode
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_OPEN: dict[Path, VectorCache] = {}
_OPEN_LOCK = threading.Lock()


def configured(path: Path | str | None) -> VectorCache | None:
    """The process's one cache for this file (so a broken file is reported once), or None when unset
    (an empty PRICER_VECTOR_CACHE, which settings read as the path ".", is unset too)."""
    if path is None or str(path) in ("", "."):
        return None
    resolved = Path(path).expanduser().absolute()
    with _OPEN_LOCK:
        if resolved not in _OPEN:
            _OPEN[resolved] = VectorCache(resolved)
        return _OPEN[resolved]
