"""The ensemble members' Prometheus metrics (on prometheus-client's default registry, which the
service's /metrics serves): how long each member took on a request and why one was left out."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MEMBER_DURATION = Histogram(
    "pricer_member_duration_seconds",
    "Time one ensemble member took on one request (queueing included), by member.",
    ["member"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MEMBER_LEFT_OUT = Counter(
    "pricer_member_left_out_total",
    "Ensemble members left out of an answer, by member and reason (timeout, error, other-adapter: the LLM answered with another adapter than the stack was fitted on).",
    ["member", "reason"],
)
