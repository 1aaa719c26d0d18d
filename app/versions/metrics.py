"""What a replica says about following the desired state, on prometheus_client's default registry (the
service's /metrics serves it), and the one-series gauges every kind's "which version is active" uses.

Label values are bounded: one lag series per kind (the previous one removed), reasons a fixed set."""

from __future__ import annotations

from prometheus_client import Gauge

from app.versions.desired import PARTS

KINDS = PARTS  # the desired state's parts: their lag series read 0 from the start

LAG = Gauge(
    "pricer_desired_state_lag",
    "1 while this replica does not serve the desired version of `kind` (desired, active, why); 0 when it does.",
    ["kind", "desired", "active", "reason"],
)


class OneSeries:
    """A labelled gauge that keeps a single series (per `key`): setting new labels removes the old."""

    def __init__(self, gauge: Gauge):
        self.gauge = gauge
        self._labels: dict[str, tuple[str, ...]] = {}

    def set(self, labels: tuple[str, ...], value: float = 1, key: str = "") -> None:
        previous = self._labels.get(key)
        if previous is not None and previous != labels:
            try:
                self.gauge.remove(*previous)
            except KeyError:
                pass
        self.gauge.labels(*labels).set(value)
        self._labels[key] = labels


_lag = OneSeries(LAG)


def active_labels(label: str | None) -> tuple[str, str]:
    """"name@version" -> (name, version); None -> ("", "") (no version active)."""
    name, _, version = (label or "").partition("@")
    return name, version


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
    _lag.set(labels, 0 if lag is None else 1, key=kind)


for _kind in KINDS:
    set_lag(_kind, None)
