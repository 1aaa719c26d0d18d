"""The service's Prometheus metrics, on prometheus-client's default REGISTRY (where vLLM's own
vllm:* metrics land too, so one /metrics serves both).

Labels are bounded: `route` is the route template (or "unmatched"), `status` the numeric code,
`base` and `adapter` the served model, of which there is one of each at a time.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.ensemble.metrics import MEMBER_DURATION, MEMBER_LEFT_OUT  # noqa: F401 - on /metrics with the rest
from app.versions.metrics import OneSeries

REQUESTS = Counter("pricer_requests_total", "HTTP requests answered, by route template and status code.", ["route", "status"])
REQUEST_DURATION = Histogram("pricer_request_duration_seconds", "Time from request start to the last byte of the response, "
                             "by route template.", ["route"],
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
ESTIMATE_DOLLARS = Histogram("pricer_estimate_dollars", "Point price estimates answered, in dollars.",
                             buckets=(0.5, 1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000))
BATCH_ITEMS = Histogram("pricer_batch_items", "Items per POST /v1/estimate/batch request.",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
INFLIGHT = Gauge("pricer_inflight_requests", "Requests being served now (probes and /metrics excluded).")
ADMISSION_LIMIT = Gauge("pricer_admission_limit", "Requests admitted at once: measured throughput x PRICER_ADMISSION_TARGET_S, within its floor and PRICER_MAX_INFLIGHT.")
SHED = Counter("pricer_shed_requests_total", "Requests answered 429 because the service could not answer them within PRICER_ADMISSION_TARGET_S.")
MODEL_INFO = Gauge("pricer_model_info", "1 for the served base model and the active adapter (\"\" = none).", ["base", "adapter"])

_model_info = OneSeries(MODEL_INFO)


def set_model_info(base: str, adapter: str | None) -> None:
    """Point pricer_model_info at (base, adapter), dropping the previous series."""
    _model_info.set((base, adapter or ""))
