"""Heartbeats: each replica's small JSON file in the store, `<models_dir>/.pricer-fleet/<replica>.json`,
rewritten (temporary name, then rename) every PRICER_WATCH_POLL_SECONDS with what it serves.

A heartbeat older than PRICER_FLEET_STALE_S is left out of the fleet view; one older than ten times
that is removed by whoever lists the fleet; a replica that stops cleanly removes its own. Ages are
measured with the reader's clock against the writer's wall time, so replicas on several hosts need
clocks in step to well within the stale time (NTP does that)."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from pathlib import Path

from app.runtime.atomic import atomic_write_text

log = logging.getLogger(__name__)

FOLDER = ".pricer-fleet"
PRUNE_FACTOR = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def folder(models_dir: Path) -> Path:
    return Path(models_dir) / FOLDER


def replica_id(settings) -> str:
    """PRICER_REPLICA_ID, else `<host name>-<port>` (a container's host name is its id): a restarted
    replica takes its own place in the view again."""
    raw = settings.replica_id or f"{socket.gethostname()}-{settings.port}"
    return _UNSAFE.sub("_", raw)[:128] or "replica"


def address(settings) -> str:
    """PRICER_ADVERTISE_URL, else http://<listen address, or the host name for 0.0.0.0>:<port>."""
    if settings.advertise_url:
        return settings.advertise_url.rstrip("/")
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else socket.gethostname()
    return f"http://{host}:{settings.port}"


def write(models_dir: Path, beat: dict) -> None:
    beat = {**beat, "last_seen_unix": time.time()}
    atomic_write_text(folder(models_dir) / f"{beat['replica']}.json", json.dumps(beat, sort_keys=True) + "\n")


def remove(models_dir: Path, replica: str) -> None:
    (folder(models_dir) / f"{replica}.json").unlink(missing_ok=True)


def read_all(models_dir: Path, stale_s: float, prune: bool = True) -> list[dict]:
    """Fresh heartbeats, by replica id, each with `age_s`; long-stale files are removed."""
    now = time.time()
    found = []
    root = folder(models_dir)
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*.json")):
        if path.name.startswith("."):  # a heartbeat being written (app.runtime.atomic's hidden temporary)
            continue
        try:
            beat = json.loads(path.read_text(encoding="utf-8"))
            age = now - float(beat["last_seen_unix"])
        except FileNotFoundError:
            continue  # removed while listing
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.debug("skipping unreadable heartbeat %s: %s", path, e)
            continue
        if age > stale_s * PRUNE_FACTOR and prune:
            path.unlink(missing_ok=True)
            continue
        if age <= stale_s:
            found.append({**beat, "age_s": round(max(age, 0.0), 2)})
    return found
