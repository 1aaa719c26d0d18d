"""Ensemble bundles across replicas (real processes, fake engine for the llm member, a small real
bundle): a bundle dropped into the store is validated and swapped in on every replica under load with
no failed request; each answer names the bundle that answered; an admin rollback reaches them all."""

from __future__ import annotations

import threading
import time

import httpx

from app.versions import desired
from tests.api.ensemble_fixtures import write_test_bundle
from tests.fleet.replicas import ITEM, fleet, until

E1, E2 = "20260101-000000", "20260102-000000"


class Load:
    """Closed-loop estimates to every replica from one thread each; records (replica, status, ensemble)."""

    def __init__(self, replicas):
        self.replicas, self.results, self._stop = replicas, [], threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(r,), daemon=True) for r in replicas]

    def _run(self, replica):
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    r = client.post("/v1/estimate", json=ITEM)
                    self.results.append((replica.name, r.status_code, r.json().get("ensemble") if r.status_code == 200 else r.text))
                except httpx.HTTPError as e:
                    self.results.append((replica.name, -1, str(e)))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(30)


def test_a_new_bundle_is_swapped_in_on_every_replica_under_load(tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    write_test_bundle(store, E1)
    settings = {"PRICER_ESTIMATOR": "ensemble", "PRICER_DEFAULT_ADAPTER": "", "PRICER_ENSEMBLE_POLICY": "latest",
                "PRICER_FAKE_LATENCY_S": "0.01"}
    with fleet(tmp_path, store, tiny_model_dir, ["e1", "e2", "e3"], **settings) as replicas:
        assert all(r.estimate()["ensemble"] == f"pricer-ensemble@{E1}" for r in replicas)
        assert desired.read(store).ensemble == ("pricer-ensemble", E1)  # the start's choice, published
        with Load(replicas) as load:
            time.sleep(1.0)
            write_test_bundle(store, E2)  # built in a hidden folder, renamed into place
            new = f"pricer-ensemble@{E2}"
            until(lambda: all(r.estimate()["ensemble"] == new for r in replicas), 30)
            converged_at = len(load.results)
            time.sleep(1.0)
        failed = [row for row in load.results if row[1] != 200]
        assert failed == [], failed[:5]
        seen = {row[2] for row in load.results}
        assert seen == {f"pricer-ensemble@{E1}", new}  # answers came from both, each naming its bundle
        # once a replica answered with the new bundle it never answered with the old one again
        for replica in replicas:
            labels = [row[2] for row in load.results if row[0] == replica.name]
            first_new = labels.index(new)
            assert set(labels[first_new:]) == {new}, replica.name
        assert len(load.results) > converged_at  # load went on after convergence
        assert desired.read(store).ensemble == ("pricer-ensemble", E2)

        # a rollback through the admin API of one replica reaches all of them
        back = replicas[1].post(f"/v1/ensembles/pricer-ensemble/{E1}/activate", params={"wait": "true", "timeout_s": 30})
        assert back.status_code == 200, back.text
        assert back.json()["converged"] is True and back.json()["active"] == f"pricer-ensemble@{E1}"
        assert all(r.estimate()["ensemble"] == f"pricer-ensemble@{E1}" for r in replicas)
        listing = replicas[0].get("/v1/ensembles").json()
        assert {v["version"]: v["status"] for v in listing["versions"]} == {E1: "active", E2: "available"}
        view = replicas[2].get("/v1/fleet").json()
        assert all(r["ensemble"] == f"pricer-ensemble@{E1}" for r in view["replicas"]) and len(view["replicas"]) == 3


def test_a_bundle_a_replica_cannot_fully_load_is_refused_there_and_reported(tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    write_test_bundle(store, E1)
    settings = {"PRICER_ESTIMATOR": "ensemble", "PRICER_DEFAULT_ADAPTER": "", "PRICER_ENSEMBLE_POLICY": "manual"}
    with fleet(tmp_path, store, tiny_model_dir, ["m1", "m2"], **settings) as (m1, m2):
        bad = write_test_bundle(store, E2)
        (bad / "members" / "constant" / "estimator.json").write_text("{}")  # no longer the fitted member
        answer = m1.post(f"/v1/ensembles/pricer-ensemble/{E2}/activate")
        assert answer.status_code == 409 and "constant" in answer.json()["detail"]
        assert m1.estimate()["ensemble"] == f"pricer-ensemble@{E1}"
        assert m1.post("/v1/ensembles/pricer-ensemble/20990101-000000/activate").status_code == 404
        # chosen anyway in the store (another host could load it): both keep E1 and say why
        desired.update(store, ensemble=("pricer-ensemble", E2))
        until(lambda: m2.get("/readyz").json()["desired_state"]["lag"], 10)
        [lag] = m2.get("/readyz").json()["desired_state"]["lag"]
        assert lag["kind"] == "ensemble" and lag["active"] == f"pricer-ensemble@{E1}" and "constant" in lag["reason"]
        assert m2.estimate()["ensemble"] == f"pricer-ensemble@{E1}"
        assert 'pricer_desired_state_lag{active="pricer-ensemble@' in m2.get("/metrics").text
