"""Adapter metrics on prometheus_client's default registry (the service's /metrics serves it).

Label values are bounded: load results are a fixed set, request counts are by adapter NAME (not
version), and the active-info gauge keeps a single series (the previous one is removed)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.versions.metrics import OneSeries

LOAD_RESULTS = ("ok", "rejected", "failed")

ADAPTER_LOADS = Counter("pricer_adapter_loads", "Adapter versions loaded or rejected, by result (ok, rejected, failed).", ["result"])
ADAPTER_SWAP_SECONDS = Histogram("pricer_adapter_swap_seconds", "Time to activate a version: load (if needed) and switch.",
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
ADAPTER_ACTIVE_INFO = Gauge("pricer_adapter_active_info", "The active adapter version (value 1; name/version empty: the base model).",
                            ["name", "version"])
ADAPTER_REQUESTS = Counter("pricer_adapter_requests", "Leases (requests) served, by adapter name ('' for the base model).", ["adapter"])
ADAPTER_ROLLBACKS = Counter("pricer_adapter_rollbacks", "Active versions rolled back automatically after repeated failed estimates.")
ADAPTER_REJECTED = Gauge("pricer_adapter_rejected_versions", "Versions in the store currently rejected.")

for _result in LOAD_RESULTS:
    ADAPTER_LOADS.labels(result=_result)

_active = OneSeries(ADAPTER_ACTIVE_INFO)


def set_active(name: str | None, version: str | None) -> None:
    _active.set((name or "", version or ""))
