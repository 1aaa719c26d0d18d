"""Swap load benchmark: drive the service at full concurrency while adapter versions are swapped,
and check that no request fails and that every response names a version that was active at some
moment during that request. Throughput with swaps is compared against the same load without.

`pricer bench swaps --url URL --data FILE --concurrency N --requests M --swaps 10 [--json]`
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail


@dataclass
class Outcome:
    start: float
    end: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    label: str | None = None
    error: str | None = None


@dataclass
class Swap:
    label: str
    sent: float  # the activation request went out
    done: float  # and was answered: the switch happened in between


def possibly_active(label: str | None, start: float, end: float, initial: str | None, swaps: list[Swap]) -> bool:
    """Whether `label` may have been the active version at some moment in [start, end].

    Version i became active somewhere in [sent_i, done_i] and stayed so until the next switch,
    which happened by done_{i+1}; the initial one was active until done_0."""
    windows = [(initial, float("-inf"), swaps[0].done if swaps else float("inf"))]
    for i, swap in enumerate(swaps):
        until = swaps[i + 1].done if i + 1 < len(swaps) else float("inf")
        windows.append((swap.label, swap.sent, until))
    return any(name == label and begin <= end and start <= until for name, begin, until in windows)


async def drive(client, bodies: list[dict], concurrency: int, requests: int, headers: dict) -> list[Outcome]:
    """`requests` POST /v1/estimate calls, `concurrency` at a time (closed loop)."""
    counter = itertools.count()
    outcomes: list[Outcome] = []

    async def worker() -> None:
        while (i := next(counter)) < requests:
            start = time.monotonic()
            try:
                response = await client.post("/v1/estimate", json=bodies[i % len(bodies)], headers=headers)
                label = response.json().get("adapter") if response.status_code == 200 else None
                error = None if response.status_code == 200 else response.text[:200]
                outcomes.append(Outcome(start, time.monotonic(), response.status_code, label, error))
            except Exception as e:  # counted as failed, never raised
                outcomes.append(Outcome(start, time.monotonic(), 0, None, f"{type(e).__name__}: {e}"))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


async def swap_versions(client, versions: list[tuple[str, str]], swaps: int, interval: float, headers: dict) -> list[Swap]:
    """Activate the versions round robin, `swaps` times, one every `interval` seconds."""
    done: list[Swap] = []
    for i in range(swaps):
        await asyncio.sleep(interval)
        name, version = versions[(i + 1) % len(versions)]
        sent = time.monotonic()
        response = await client.post(f"/v1/adapters/{name}/{version}/activate", headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"activating {name}@{version} failed: {response.status_code} {response.text[:200]}")
        done.append(Swap(f"{name}@{version}", sent, time.monotonic()))
    return done


def summarize(outcomes: list[Outcome], elapsed: float, initial: str | None = None, swaps: list[Swap] | None = None) -> dict:
    ok = [o for o in outcomes if o.status == 200]
    latencies = sorted((o.end - o.start) * 1000 for o in ok) or [0.0]
    result = {"requests": len(outcomes), "failed": len(outcomes) - len(ok),
              "requests_per_s": round(len(ok) / elapsed, 3) if elapsed > 0 else 0.0,
              "p50_ms": round(latencies[len(latencies) // 2], 1),
              "p95_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))], 1),
              "labels": sorted({str(o.label) for o in ok})}
    if swaps is not None:
        wrong = [o for o in ok if not possibly_active(o.label, o.start, o.end, initial, swaps)]
        result.update(swaps=len(swaps), mislabelled=len(wrong), swap_ms=[round((s.done - s.sent) * 1000, 1) for s in swaps])
    errors = [o.error for o in outcomes if o.status != 200][:3]
    if errors:
        result["first_errors"] = errors
    return result


async def run(client, bodies, concurrency: int, requests: int, swaps: int, api_headers: dict, admin_headers: dict) -> dict:
    """Baseline without swaps, then the same load with `swaps` swaps spread over it."""
    listing = (await client.get("/v1/adapters", headers=admin_headers)).raise_for_status().json()
    initial = listing["active"]
    if initial is None:
        raise RuntimeError("no active adapter: activate one first")
    name = initial.split("@", 1)[0]
    versions = [(r["name"], r["version"]) for r in listing["adapters"] if r["name"] == name and r["status"] != "rejected"]
    if len(versions) < 2:
        raise RuntimeError(f"adapter {name!r} needs two or more usable versions to swap between")
    start_index = versions.index(tuple(initial.split("@", 1)))
    versions = versions[start_index:] + versions[:start_index]  # the active one first

    # A version's first load runs its smoke check through the engine; in service that happens when
    # the version arrives, before any swap. Do it here too (one pinned request each), so the
    # measurement is of the swaps themselves.
    for n, v in versions:
        pinned = await client.post("/v1/estimate", json={**bodies[0], "adapter": f"{n}@{v}"}, headers=api_headers)
        if pinned.status_code != 200:
            raise RuntimeError(f"{n}@{v} cannot serve: {pinned.status_code} {pinned.text[:200]}")
    await drive(client, bodies, concurrency, min(requests, 2 * concurrency), api_headers)  # warm up
    began = time.monotonic()
    baseline = summarize(await drive(client, bodies, concurrency, requests, api_headers), time.monotonic() - began)

    interval = (requests / max(baseline["requests_per_s"], 1e-3)) / (swaps + 1)
    began = time.monotonic()
    load = asyncio.create_task(drive(client, bodies, concurrency, requests, api_headers))
    timeline = await swap_versions(client, versions, swaps, interval, admin_headers)
    outcomes = await load
    swapping = summarize(outcomes, time.monotonic() - began, initial, timeline)
    ratio = swapping["requests_per_s"] / baseline["requests_per_s"] if baseline["requests_per_s"] else 0.0
    return {"baseline": baseline, "with_swaps": swapping, "throughput_ratio": round(ratio, 3), "versions": [f"{n}@{v}" for n, v in versions]}


class Options(BaseModel):
    url: str = Field("http://127.0.0.1:8000", description="The running service.")
    data: Path = Field(description="Items JSONL to send.", json_schema_extra=cli(exists=True, dir_okay=False))
    concurrency: int = Field(32, ge=1, description="Requests in flight at once.")
    requests: int = Field(300, ge=1, description="Requests per phase (without, then with swaps).")
    swaps: int = Field(10, ge=1, description="Activations during the second phase.")
    api_key: str = Field("", description="Estimate key, if the service needs one.", json_schema_extra=cli(envvar="PRICER_API_KEY"))
    admin_key: str = Field("", description="Admin key, if the service needs one.", json_schema_extra=cli(envvar="PRICER_ADMIN_KEY"))
    as_json: bool = Field(False, description="Print one JSON object as the last line.", json_schema_extra=cli(name="--json"))


def bench(o: Options) -> None:
    """Drive the service while adapter versions are swapped: failures, labels, throughput ratio."""
    import httpx

    from app.bench.loadgen import request_bodies
    from app.model.item_files import load_items

    bodies = request_bodies(load_items(o.data)[:o.requests])
    if not bodies:
        raise typer.BadParameter(f"no items in {o.data}")
    api = {"Authorization": f"Bearer {o.api_key}"} if o.api_key else {}
    admin = {"Authorization": f"Bearer {o.admin_key}"} if o.admin_key else {}

    async def main() -> dict:
        limits = httpx.Limits(max_connections=o.concurrency + 4)
        async with httpx.AsyncClient(base_url=o.url, timeout=300, limits=limits) as client:
            return await run(client, bodies, o.concurrency, o.requests, o.swaps, api, admin)

    try:
        result = asyncio.run(main())
    except (RuntimeError, httpx.HTTPError) as e:
        fail(e)
    b, s = result["baseline"], result["with_swaps"]
    typer.echo(f"versions swapped: {', '.join(result['versions'])}")
    typer.echo(f"without swaps: {b['requests_per_s']} req/s, p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms, failed {b['failed']}")
    typer.echo(f"with {s['swaps']} swaps: {s['requests_per_s']} req/s, p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, "
               f"failed {s['failed']}, mislabelled {s['mislabelled']}, labels {s['labels']}")
    typer.echo(f"throughput ratio (with/without): {result['throughput_ratio']}")
    if o.as_json:
        typer.echo(json.dumps(result))
