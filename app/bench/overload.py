"""`pricer bench overload`: what clients see when a service gets several times the requests it can hold.

Two phases of the same kind, one run: `capacity` clients (default: the admission limit the service
reports in /readyz once warmed, else PRICER_MAX_INFLIGHT), then factor x capacity clients. The
admitted requests' p99 under overload is compared with their p99 at capacity.

Bounded on purpose: loopback URLs only, a fixed number of clients, a time limit and a request cap
(a warm-up phase of the same load comes first and is not counted).
Each client sends one estimate, waits for the answer, and sends the next; after a 429 it waits
`--backoff-ms`, or the Retry-After-Ms the service asked for when longer (`--honor-retry-after`, the
default: what a well-behaved client does), and tries again. Reported: latency of the answered
requests (p50, p99), the share of 429s (and whether they carried Retry-After), other errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlparse

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail

from app.bench.loadgen import percentile

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def overload(url: str, bodies: list[dict], clients: int, seconds: float, max_requests: int,
                   backoff_s: float, headers: dict, honor_retry_after: bool = False) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    latencies: list[float] = []
    shed_ms: list[float] = []
    statuses: Counter = Counter()
    retry_after = 0
    sent = 0
    deadline = time.monotonic() + seconds

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=headers) as client:
        async def one_client(k: int) -> None:
            nonlocal sent, retry_after
            while time.monotonic() < deadline and sent < max_requests:
                body = bodies[(sent + k) % len(bodies)]
                sent += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/estimate", json=body)
                except httpx.HTTPError as e:
                    statuses[f"connection ({type(e).__name__})"] += 1
                    continue
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                elif response.status_code == 429:
                    shed_ms.append((time.perf_counter() - started) * 1000)
                    retry_after += "retry-after" in response.headers
                    asked = response.headers.get("retry-after-ms", "")
                    wait = max(backoff_s, int(asked) / 1000) if honor_retry_after and asked.isdigit() else backoff_s
                    await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))

        started = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(clients)))
        wall = time.perf_counter() - started
    answered = sum(statuses.values())
    return {"clients": clients, "seconds": round(wall, 2), "requests": answered, "ok": len(latencies),
            "ok_per_s": round(len(latencies) / wall, 3) if wall else 0.0,
            "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "share_429": round(statuses.get("429", 0) / answered, 4) if answered else 0.0,
            "p50_429_ms": round(percentile(shed_ms, 50), 1) if shed_ms else None,
            "other_errors": sum(n for status, n in statuses.items() if status not in ("200", "429")),
            "retry_after_on_429": retry_after == statuses.get("429", 0), "statuses": dict(sorted(statuses.items()))}


class Options(BaseModel):
    url: str = Field("http://127.0.0.1:8000", description="A running Pricer service on this machine (loopback only).")
    capacity: int | None = Field(None, ge=1, description="Requests the service answers in time at once; default: the admission limit its /readyz reports after the warm-up, else PRICER_MAX_INFLIGHT.")
    factor: float = Field(4.0, ge=1, le=16, description="Clients = factor x capacity.")
    seconds: float = Field(30.0, ge=1, le=300, description="Stop sending after this long.")
    max_requests: int = Field(5000, ge=1, le=50_000, description="Stop after this many requests.")
    backoff_ms: float = Field(100.0, ge=0, description="A client's wait after a 429 before it tries again.")
    warmup_s: float = Field(10.0, ge=0, le=120, description="The same load first for this long, not counted (the engine's first batches of each size are slow).")
    api_key: str | None = Field(None, description="Bearer key of the service, if it needs one.", json_schema_extra=cli(envvar="PRICER_API_KEY"))
    honor_retry_after: bool = Field(True, description="After a 429, wait the Retry-After-Ms the service asked for (when longer than --backoff-ms).")
    as_json: bool = Field(False, description="Last line: one JSON object.", json_schema_extra=cli(name="--json"))


def bench(o: Options) -> None:
    """Overload a local service (factor x its capacity) for a bounded time: p50/p99 and the 429 share."""
    from app.config import Settings

    url, factor = o.url, o.factor
    if (urlparse(url).hostname or "") not in LOOPBACK:
        fail(f"{url} is not a loopback address; this load is only for a service on this machine")
    bodies = [{"title": f"Item {i}: stainless steel kitchen tool", "description": f"Model {i}, dishwasher safe, {i % 7 + 1} pieces."}
              for i in range(64)]
    headers = {"Authorization": f"Bearer {o.api_key}"} if o.api_key else {}

    def load(clients: int, seconds: float) -> dict:
        return asyncio.run(overload(url, bodies, clients, seconds, o.max_requests, o.backoff_ms / 1000, headers, o.honor_retry_after))

    if o.warmup_s:  # at the fixed limit or the given capacity: the service measures its own rate meanwhile
        load(max(1, round(factor * (o.capacity or Settings().inflight_limit))), o.warmup_s)
    capacity = o.capacity or _reported_capacity(url, headers) or Settings().inflight_limit
    at_capacity = load(capacity, o.seconds)
    result = load(max(1, round(factor * capacity)), o.seconds)
    ratio = result["p99_ms"] / at_capacity["p99_ms"] if at_capacity["p99_ms"] else 0.0
    result.update(capacity=capacity, factor=factor, honor_retry_after=o.honor_retry_after, at_capacity=at_capacity, p99_vs_capacity=round(ratio, 3))
    for label, r in (("at capacity", at_capacity), (f"{factor:g} x capacity", result)):
        typer.echo(f"{r['clients']} clients ({label} {capacity}) for {r['seconds']} s: {r['ok']} answered "
                   f"({r['ok_per_s']}/s), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, 429 share {r['share_429']:.1%} "
                   f"(answered in {r['p50_429_ms']} ms p50, Retry-After on all: {r['retry_after_on_429']}); statuses {r['statuses']}")
    typer.echo(f"admitted p99 under overload / at capacity: {ratio:.2f}")
    if o.as_json:
        typer.echo(json.dumps(result))


def _reported_capacity(url: str, headers: dict) -> int | None:
    """The admission limit the service reports in /readyz (None: an older service, or not ready)."""
    import httpx

    try:
        body = httpx.get(f"{url}/readyz", headers=headers, timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return None
    limit = (body.get("admission") or {}).get("limit") if isinstance(body, dict) else None
    return int(limit) if isinstance(limit, int) and limit > 0 else None
