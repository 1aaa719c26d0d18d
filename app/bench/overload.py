"""`pricer bench-overload`: what clients see when a service gets several times the requests it can hold.

Bounded on purpose: loopback URLs only, a fixed number of clients, a time limit and a request cap
(a warm-up phase of the same load comes first and is not counted).
Each client sends one estimate, waits for the answer, and sends the next; after a 429 it waits
`--backoff-ms` (a client honouring a short retry) and tries again. Reported: latency of the answered
requests (p50, p99), the share of 429s (and whether they carried Retry-After), other errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlparse

import typer

from app.bench.load import percentile

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def overload(url: str, bodies: list[dict], clients: int, seconds: float, max_requests: int,
                   backoff_s: float, headers: dict) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    latencies: list[float] = []
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
                    retry_after += "retry-after" in response.headers
                    await asyncio.sleep(backoff_s)

        started = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(clients)))
        wall = time.perf_counter() - started
    answered = sum(statuses.values())
    return {
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": answered,
        "ok": len(latencies),
        "ok_per_s": round(len(latencies) / wall, 3) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "share_429": round(statuses.get("429", 0) / answered, 4) if answered else 0.0,
        "retry_after_on_429": retry_after == statuses.get("429", 0),
        "statuses": dict(sorted(statuses.items())),
    }


def register(cli: typer.Typer) -> None:
    @cli.command("bench-overload")
    def bench_overload(
        url: str = typer.Option("http://127.0.0.1:8000", help="A running Pricer service on this machine (loopback only)."),
        capacity: int = typer.Option(None, min=1, help="Requests the service holds at once; default: its in-flight limit from PRICER_* settings."),
        factor: float = typer.Option(4.0, min=1, max=16, help="Clients = factor x capacity."),
        seconds: float = typer.Option(30.0, min=1, max=300, help="Stop sending after this long."),
        max_requests: int = typer.Option(5000, min=1, max=50_000, help="Stop after this many requests."),
        backoff_ms: float = typer.Option(100.0, min=0, help="A client's wait after a 429 before it tries again."),
        warmup_s: float = typer.Option(10.0, min=0, max=120, help="The same load first for this long, not counted (the engine's first batches of each size are slow)."),
        api_key: str = typer.Option(None, envvar="PRICER_API_KEY", help="Bearer key of the service, if it needs one."),
        as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
    ) -> None:
        """Overload a local service (factor x its capacity) for a bounded time: p50/p99 and the 429 share."""
        from app.config import Settings

        host = urlparse(url).hostname or ""
        if host not in LOOPBACK:
            typer.echo(f"error: {url} is not a loopback address; this load is only for a service on this machine", err=True)
            raise typer.Exit(2)
        capacity = capacity or Settings().inflight_limit
        clients = max(1, round(factor * capacity))
        bodies = [
            {"title": f"Item {i}: stainless steel kitchen tool", "description": f"Model {i}, dishwasher safe, {i % 7 + 1} pieces."}
            for i in range(64)
        ]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if warmup_s:
            asyncio.run(overload(url, bodies, clients, warmup_s, max_requests, backoff_ms / 1000, headers))
        result = asyncio.run(overload(url, bodies, clients, seconds, max_requests, backoff_ms / 1000, headers))
        result.update(capacity=capacity, factor=factor)
        typer.echo(
            f"{clients} clients ({factor:g} x capacity {capacity}) for {result['seconds']} s: {result['ok']} answered "
            f"({result['ok_per_s']}/s), p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"429 share {result['share_429']:.1%} (Retry-After on all: {result['retry_after_on_429']}); statuses {result['statuses']}"
        )
        if as_json:
            typer.echo(json.dumps(result))
