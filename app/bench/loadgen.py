"""A closed-loop async HTTP load generator and its statistics.

`concurrency` workers each send one request, wait for the answer, and send the next, until
`requests` have been sent. Latency is measured per request on the client (send to full answer);
throughput is completed requests over the wall time of the whole run. Errors are counted by
status code ("connection" when no HTTP answer came back). `Target` is one HTTP endpoint under that
load (`pricer bench load`, `pricer bench cpu`).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from app.runtime.retry import retrying


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class LoadResult:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)  # successful requests only
    errors: Counter = field(default_factory=Counter)  # status (as text) -> count

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    def summary(self) -> dict:
        return {
            "requests": self.ok + sum(self.errors.values()),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.ok / self.seconds, 3) if self.seconds > 0 else 0.0,
            "p50_ms": round(percentile(self.latencies_ms, 50), 2),
            "p95_ms": round(percentile(self.latencies_ms, 95), 2),
            "p99_ms": round(percentile(self.latencies_ms, 99), 2),
            "errors": dict(sorted(self.errors.items())),
        }


def merge(results: Sequence[LoadResult]) -> LoadResult:
    """Several runs as one: latencies pooled, errors added, wall times summed."""
    merged = LoadResult(seconds=sum(r.seconds for r in results))
    for r in results:
        merged.latencies_ms.extend(r.latencies_ms)
        merged.errors.update(r.errors)
    return merged


# send(i) -> HTTP status code; raises on transport errors
Send = Callable[[int], Awaitable[int]]


async def run_load(send: Send, concurrency: int, requests: int) -> LoadResult:
    counter = itertools.count()
    result = LoadResult(seconds=0.0)

    async def worker() -> None:
        while (i := next(counter)) < requests:
            started = time.perf_counter()
            try:
                status = await send(i)
            except Exception as e:  # counted, never raised: a load test reports failures
                result.errors[f"connection ({type(e).__name__})"] += 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            if 200 <= status < 300:
                result.latencies_ms.append(elapsed_ms)
            else:
                result.errors[str(status)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    result.seconds = time.perf_counter() - started
    return result


def format_summary(label: str, summary: dict) -> str:
    errors = ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) or "none"
    return (
        f"{label}: {summary['requests_per_s']:.2f} requests/s ({summary['ok']}/{summary['requests']} ok in "
        f"{summary['seconds']:.1f} s), latency p50 {summary['p50_ms']:.1f} ms, p95 {summary['p95_ms']:.1f} ms, "
        f"p99 {summary['p99_ms']:.1f} ms; errors: {errors}"
    )


def request_bodies(items) -> list[dict]:
    """POST /v1/estimate bodies: the title, and the rest of the curated text as the description."""
    bodies = []
    for item in items:
        rest = item.text[len(item.title):].lstrip() if item.text.startswith(item.title) else item.text
        bodies.append({"title": item.title, "description": rest or None})
    return bodies


class Target:
    """One HTTP endpoint under load: a client, the request bodies, and the path they go to."""

    def __init__(self, url: str, path: str, bodies: list[dict], concurrency: int, headers: dict, retries_429: int = 0):
        """`retries_429`: a 429 is retried this many times after the wait it asks for (Retry-After-Ms,
        else Retry-After), as a well-behaved client does; its latency includes the wait."""
        import httpx

        self.path, self.bodies = path, bodies
        self.retries_429, self.retried = retries_429, 0
        limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
        self.client = httpx.AsyncClient(base_url=url, timeout=300, limits=limits, headers=headers)

    async def __aenter__(self) -> Target:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()

    async def probe(self) -> dict:
        """One request; its answer names the model and adapter that served it."""
        response = await self.client.post(self.path, json=self.bodies[0])
        if response.status_code != 200:
            raise RuntimeError(f"{self.client.base_url}{self.path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    async def send(self, i: int) -> int:
        attempts = retrying({429}, self.retries_429, transport_errors=False, asynchronous=True)
        response = await attempts(self.client.post, self.path, json=self.bodies[i % len(self.bodies)])
        self.retried += attempts.statistics["attempt_number"] - 1
        return response.status_code

    async def run(self, concurrency: int, requests: int, warmup: bool = True) -> LoadResult:
        if warmup:
            await run_load(self.send, concurrency, min(requests, 2 * concurrency))  # not counted
        return await run_load(self.send, concurrency, requests)
