"""Heartbeats and the fleet view without processes: fresh ones listed, stale ones left out and later
removed, convergence judged against the current desired state."""

from __future__ import annotations

import json
import time

from app.config import Settings
from app.fleet import heartbeat, view
from app.versions import desired


def beat(store, replica, generation, age_s=0.0, lag=None):
    heartbeat.write(store, {"replica": replica, "generation": generation, "lag": lag or [], "adapter": "pa@v1"})
    path = heartbeat.folder(store) / f"{replica}.json"
    data = json.loads(path.read_text())
    data["last_seen_unix"] = time.time() - age_s
    path.write_text(json.dumps(data))


def test_stale_heartbeats_age_out_and_long_stale_ones_are_removed(tmp_path):
    desired.update(tmp_path, adapter=("pa", "v1"))
    beat(tmp_path, "fresh", 1)
    beat(tmp_path, "stale", 1, age_s=20)
    beat(tmp_path, "gone", 1, age_s=200)
    listing = view.fleet(tmp_path, stale_s=15)
    assert [r["replica"] for r in listing["replicas"]] == ["fresh"]
    assert (heartbeat.folder(tmp_path) / "stale.json").exists()  # left out, kept for a while
    assert not (heartbeat.folder(tmp_path) / "gone.json").exists()  # removed after 10 x stale


def test_a_heartbeat_being_written_is_not_a_second_replica(tmp_path):
    beat(tmp_path, "a", 1)
    writing = heartbeat.folder(tmp_path) / ".a.json.x1y2.tmp.json"  # app.runtime.atomic's temporary name
    writing.write_text((heartbeat.folder(tmp_path) / "a.json").read_text())
    assert [r["replica"] for r in heartbeat.read_all(tmp_path, stale_s=15)] == ["a"]


def test_convergence_is_judged_against_the_current_generation(tmp_path):
    desired.update(tmp_path, adapter=("pa", "v1"))
    beat(tmp_path, "a", 1)
    beat(tmp_path, "b", 1, lag=[{"kind": "adapter", "reason": "rank"}])
    listing = view.fleet(tmp_path, stale_s=15)
    assert {r["replica"]: r["converged"] for r in listing["replicas"]} == {"a": True, "b": False}
    assert listing["converged"] is False
    desired.update(tmp_path, adapter=("pa", "v2"))  # nobody has read generation 2 yet
    assert not any(r["converged"] for r in view.fleet(tmp_path, stale_s=15)["replicas"])


def test_replica_ids_and_addresses(monkeypatch):
    settings = Settings(_env_file=None, replica_id="a b/c", port=8123, host="0.0.0.0")
    assert heartbeat.replica_id(settings) == "a_b_c"
    assert heartbeat.address(settings).endswith(":8123") and "0.0.0.0" not in heartbeat.address(settings)
    assert heartbeat.address(Settings(_env_file=None, advertise_url="http://api-3:8000/")) == "http://api-3:8000"
