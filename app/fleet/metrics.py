"""Fleet metrics on prometheus_client's default registry: what each replica says about the desired
state, so that Prometheus (scraping every replica) sees the same facts as GET /v1/fleet.

Label values are bounded: one lag series per kind (the previous one removed), reasons a fixed set."""

from __future__ import annotations

from prometheus_client import Gauge

KINDS = ("adapter", "ensemble")
REASONS = ("missing", "rejected", "unloadable", "pinned", "other")

DESIRED_GENERATION = Gauge("pricer_desired_state_generation", "The desired state's generation as this replica last read it.")
APPLIED_GENERATION = Gauge(
    "pricer_desired_state_applied_generation", "The last desired-state generation this replica read and acted on."
)
LAG = Gauge(
    "pricer_desired_state_lag",
    "1 while this replica does not serve the desired version of `kind` (desired, active, why); 0 when it does.",
    ["kind", "desired", "active", "reason"],
)
ENSEMBLE_ACTIVE_INFO = Gauge(
    "pricer_ensemble_active_info", "The ensemble bundle that answers (value 1; empty labels: the LLM alone).", ["name", "version"]
)
FLEET_REPLICAS = Gauge(
    "pricer_fleet_replicas", "Replicas with a fresh heartbeat in the store, as this replica last listed them.", ["converged"]
)

_lag_labels: dict[str, tuple[str, ...]] = {}
_ensemble_labels: tuple[str, str] | None = None


def reason_class(reason: str | None) -> str:
    text = (reason or "").lower()
    if "not in this replica's store" in text or "no such" in text or "missing" in text:
        return "missing"
    if "pinned" in text:
        return "pinned"
    if "rejected" in text or "refused" in text or "fails" in text:
        return "rejected"
    if "could not be loaded" in text or "cannot load" in text:
        return "unloadable"
    return "other"


def set_lag(kind: str, lag: dict | None) -> None:
    """`lag` None: converged (the series reads 0 with empty labels)."""
    if lag is None:
        labels = (kind, "", "", "")
    else:
        labels = (kind, lag.get("desired") or "", lag.get("active") or "", reason_class(lag.get("reason")))
    previous = _lag_labels.get(kind)
    if previous is not None and previous != labels:
        try:
            LAG.remove(*previous)
        except KeyError:
            pass
    LAG.labels(*labels).set(0 if lag is None else 1)
    _lag_labels[kind] = labels


def set_ensemble(label: str | None) -> None:
    global _ensemble_labels
    name, _, version = (label or "").partition("@")
    labels = (name, version)
    if _ensemble_labels is not None and _ensemble_labels != labels:
        try:
            ENSEMBLE_ACTIVE_INFO.remove(*_ensemble_labels)
        except KeyError:
            pass
    ENSEMBLE_ACTIVE_INFO.labels(*labels).set(1)
    _ensemble_labels = labels


def set_fleet(converged: int, lagging: int) -> None:
    FLEET_REPLICAS.labels("true").set(converged)
    FLEET_REPLICAS.labels("false").set(lagging)


for _kind in KINDS:
    set_lag(_kind, None)
