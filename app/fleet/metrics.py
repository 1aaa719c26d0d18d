"""Fleet metrics on prometheus_client's default registry: what each replica says about the desired
state, so that Prometheus (scraping every replica) sees the same facts as GET /v1/fleet. The lag of
each kind (pricer_desired_state_lag) is its follower's: app.versions.metrics."""

from __future__ import annotations

from prometheus_client import Gauge

DESIRED_GENERATION = Gauge("pricer_desired_state_generation", "The desired state's generation as this replica last read it.")
APPLIED_GENERATION = Gauge(
    "pricer_desired_state_applied_generation", "The last desired-state generation this replica read and acted on."
)
FLEET_REPLICAS = Gauge(
    "pricer_fleet_replicas", "Replicas with a fresh heartbeat in the store, as this replica last listed them.", ["converged"]
)


def set_fleet(converged: int, lagging: int) -> None:
    FLEET_REPLICAS.labels("true").set(converged)
    FLEET_REPLICAS.labels("false").set(lagging)
