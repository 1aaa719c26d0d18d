"""A build promoted against the active bundle on running replicas: two real `pricer serve` processes on
one store (fake engine, policy manual, so only the desired state moves them) serve the promoted build
within seconds; a worse build is not promoted, says why, and nothing moves."""

from __future__ import annotations

from tests.build.builds import build, recipe_file, summary
from tests.fleet.replicas import fleet, until


def test_a_promoted_build_reaches_every_replica(folder, tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    weak = recipe_file(folder, {"constant": {"estimator": "constant"}}, name="pricer-ensemble")
    strong = recipe_file(folder, {"constant": {"estimator": "constant"}, "bow-ridge": {"estimator": "bow-ridge"},
                                  "features-lr": {"estimator": "features-lr"}}, name="pricer-ensemble")
    first = summary(build(weak, folder / "ws-weak", store))
    first_label = "pricer-ensemble@" + first["bundle"].rsplit("/", 1)[1]
    settings = {"PRICER_ESTIMATOR": "ensemble", "PRICER_DEFAULT_ADAPTER": "", "PRICER_ENSEMBLE_POLICY": "manual"}
    with fleet(tmp_path, store, tiny_model_dir, ["r1", "r2"], **settings) as replicas:
        assert all(r.estimate()["ensemble"] == first_label for r in replicas)
        better = summary(build(strong, folder / "ws-strong", store))
        assert better["promoted"], better
        label = "pricer-ensemble@" + better["bundle"].rsplit("/", 1)[1]
        until(lambda: all(r.estimate()["ensemble"] == label for r in replicas), 30)  # raises after 30 s
        shown = replicas[0].get("/v1/ensemble").json()
        assert shown["promotion"]["promote"] is True and shown["promotion"]["against"] == first_label

        worse = build(weak, folder / "ws-weak", store)
        assert not summary(worse)["promoted"] and "not better" in worse.stdout
        assert all(r.estimate()["ensemble"] == label for r in replicas)
