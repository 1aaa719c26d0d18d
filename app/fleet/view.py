"""The fleet view (GET /v1/fleet): every replica with a fresh heartbeat, and whether each serves
the desired state; and waiting until they all do (`?wait=true` on an activation)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from app.fleet import heartbeat
from app.fleet import metrics as fleet_metrics
from app.versions import desired
from app.versions.desired import DesiredState


def replica_converged(beat: dict, wanted: DesiredState) -> bool:
    """It read this generation and serves what it names (its own judgement: no lag)."""
    return beat.get("generation") == wanted.generation and not beat.get("lag")


def fleet(models_dir: Path, stale_s: float) -> dict:
    wanted = desired.read(models_dir)
    replicas = []
    for beat in heartbeat.read_all(models_dir, stale_s):
        row = {k: beat.get(k) for k in ("replica", "host", "address", "pid", "ready", "adapter", "ensemble",
                                         "generation", "lag", "started_at", "last_seen", "age_s")}
        row["converged"] = replica_converged(beat, wanted)
        replicas.append(row)
    converged = sum(r["converged"] for r in replicas)
    fleet_metrics.set_fleet(converged, len(replicas) - converged)
    return {"desired": wanted.describe(), "replicas": replicas, "converged": converged == len(replicas),
            "stale_after_s": stale_s}


async def wait_converged(models_dir: Path, stale_s: float, generation: int, timeout_s: float,
                         interval_s: float = 0.1) -> dict:
    """The fleet view once every visible replica has converged on `generation` or a later one (or
    when `timeout_s` is up: then `converged` is false and the laggards say why)."""
    deadline = time.monotonic() + timeout_s
    while True:
        view = await asyncio.to_thread(fleet, models_dir, stale_s)
        done = view["desired"]["generation"] >= generation and view["converged"]
        if done or time.monotonic() >= deadline:
            return {**view, "waited_s": round(timeout_s - max(deadline - time.monotonic(), 0.0), 2)}
        await asyncio.sleep(interval_s)
