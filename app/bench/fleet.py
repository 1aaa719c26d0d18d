"""`pricer bench fleet`: N replicas on this machine sharing one store; activations under load on
one of them; how long until every replica serves each one, requests failed meanwhile, and answers
with another version after a replica had converged.

    pricer bench fleet --replicas 3 --activations 10 --json                      (fake engine, synthetic store)
    pricer bench fleet --engine vllm --replicas 2 --store /tmp/fleet-store --adapter pricer-smollm2 --json

Each activation goes to replica 1 (POST /v1/adapters/{name}/{version}/activate) while closed-loop
load runs on all of them (after a random wait of up to one poll interval, so that activations
fall at every phase of the replicas' polls); every replica is then probed every 20 ms until it answers with the new
version: its time is the moment of that answer, the activation's time the slowest replica's. Load
then goes on for --settle-s; an answer from a replica with another version, to a request sent after
that replica's first answer with the new one, counts as wrong. The real-vLLM mode starts the
replicas one after the other (each loads a model) and writes the desired state of the store it is
given: give it a copy.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail

ADMIN_KEY = "bench-fleet-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
BODY = {"title": "Stainless steel electric kettle, 1.7 liters", "description": "Cordless, auto shut-off."}


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen
    log: Path


def launch(name: str, env: dict[str, str], logs: Path) -> Replica:
    from app.bench.raw_vllm import free_port

    port = free_port()
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                                   env={**os.environ, **env, "PRICER_REPLICA_ID": name}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Replica(name, f"http://127.0.0.1:{port}", process, log)


def wait_ready(replica: Replica, timeout_s: float) -> None:
    from app.bench.readiness import wait_until_ready

    try:
        wait_until_ready(f"{replica.url}/readyz", timeout_s, replica.process, interval_s=0.2)
    except Exception as e:
        raise RuntimeError(f"{replica.name} did not start: {e}\n{replica.log.read_text(errors='replace')[-2000:]}") from None


def stop(replicas: list[Replica]) -> None:
    from app.runtime.processes import stop_group

    for r in replicas:  # all stop at once: SIGTERM to each before waiting for any
        if r.process.poll() is None:
            os.killpg(r.process.pid, signal.SIGTERM)
    for r in replicas:
        stop_group(r.process, timeout_s=60)


async def measure(client, replicas: list[Replica], name: str, versions: list[str], activations: int,
                  concurrency: int, timeout_s: float, settle_s: float, jitter_s: float = 0.0) -> dict:
    """`jitter_s`: a random wait (seeded) before each activation, up to one poll interval, so that the
    activations fall at every phase of the replicas' polls rather than at one."""
    import random

    rng = random.Random(0)
    outcomes: list[tuple[int, float, float, int, str | None]] = []  # replica, sent, done, status, adapter
    stopping = asyncio.Event()

    async def estimate(index: int) -> tuple[float, float, int, str | None]:
        sent = time.monotonic()
        try:
            r = await client.post(f"{replicas[index].url}/v1/estimate", json=BODY)
            label = r.json().get("adapter") if r.status_code == 200 else None
            status = r.status_code
        except Exception:
            label, status = None, 0
        return sent, time.monotonic(), status, label

    async def worker(j: int) -> None:
        while not stopping.is_set():
            sent, done, status, label = await estimate(j % len(replicas))
            outcomes.append((j % len(replicas), sent, done, status, label))

    async def activate(version: str, wait: bool = False) -> int:
        r = await client.post(f"{replicas[0].url}/v1/adapters/{name}/{version}/activate", headers=ADMIN,
                              params={"wait": "true", "timeout_s": timeout_s} if wait else None)
        if r.status_code != 200:
            raise RuntimeError(f"activating {name}@{version} answered {r.status_code}: {r.text[:300]}")
        return r.json()["generation"]

    await activate(versions[0], wait=True)
    workers = [asyncio.create_task(worker(j)) for j in range(concurrency)]
    rounds, windows = [], []
    try:
        await asyncio.sleep(settle_s)
        for k in range(activations):
            await asyncio.sleep(rng.uniform(0, jitter_s))
            target = versions[(k + 1) % len(versions)]
            label = f"{name}@{target}"
            started = time.monotonic()
            generation = await activate(target)

            async def probe(index: int) -> float:
                while time.monotonic() - started < timeout_s:
                    sent, done, status, got = await estimate(index)
                    if got == label:
                        return done
                    await asyncio.sleep(0.02)
                raise RuntimeError(f"{replicas[index].name} did not serve {label} within {timeout_s} s")

            reached = await asyncio.gather(*(probe(i) for i in range(len(replicas))))
            rounds.append({"version": target, "generation": generation, "seconds": round(max(reached) - started, 3),
                           "per_replica_s": [round(t - started, 3) for t in reached]})
            await asyncio.sleep(settle_s)
            windows.append((label, reached, time.monotonic()))
    finally:
        stopping.set()
        await asyncio.gather(*workers, return_exceptions=True)
    wrong = sum(1 for label, reached, end in windows for i, sent, done, status, got in outcomes
                if status == 200 and sent >= reached[i] and done <= end and got != label)
    times = sorted(r["seconds"] for r in rounds)
    from app.bench.loadgen import percentile

    return {"replicas": len(replicas), "activations": len(rounds), "requests": len(outcomes),
            "failed": sum(1 for o in outcomes if o[3] != 200), "wrong_after_convergence": wrong,
            "propagation_p50_s": round(percentile(times, 50), 3), "propagation_max_s": max(times), "rounds": rounds}


def machine() -> dict:
    from app.model.hardware import CPUINFO, parse_cpuinfo

    try:
        model, flags = parse_cpuinfo(CPUINFO.read_text())
    except OSError:
        model, flags = "", frozenset()
    return {"cpu": model, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags}


class Options(BaseModel):
    replicas: int = Field(3, ge=1, description="Replicas to start on this machine, sharing one store.")
    engine: str = Field("fake", description="fake (a synthetic store, no model) or vllm (--store with a real base and adapter).")
    store: Path | None = Field(None, description="The shared store (vllm: required, a copy: its desired state is written); fake: a temporary one.")
    adapter: str = Field("bench", description="The adapter whose versions are activated in turn (vllm: e.g. pricer-smollm2).")
    activations: int = Field(10, ge=1, description="Activations measured.")
    concurrency: int = Field(8, ge=1, description="Estimate requests in flight at once, spread over the replicas.")
    poll_s: float = Field(2.0, ge=0.05, description="PRICER_WATCH_POLL_SECONDS of every replica.")
    fake_latency_s: float = Field(0.02, ge=0, description="With the fake engine: seconds per engine call.")
    settle_s: float = Field(1.0, ge=0, description="Load after each convergence, checked for wrong versions.")
    timeout_s: float = Field(120.0, ge=1, description="Most seconds an activation may take to reach every replica.")
    ready_timeout_s: float = Field(900.0, ge=1, description="Most seconds a replica may take to start.")
    as_json: bool = Field(False, description="Print one JSON object as the last line.", json_schema_extra=cli(name="--json"))


def bench(o: Options) -> None:
    """Activations under load on one of N replicas sharing a store: time until all serve it, failures, wrong versions."""
    import httpx

    from app.adapters.store import scan

    engine, store, adapter, poll_s = o.engine, o.store, o.adapter, o.poll_s
    if engine not in ("fake", "vllm"):
        raise typer.BadParameter("--engine is fake or vllm")
    work = Path(tempfile.mkdtemp(prefix="pricer-bench-fleet-"))
    env = {"PRICER_ENGINE": engine, "PRICER_ADAPTER_POLICY": "manual", "PRICER_ESTIMATOR": "llm",
           "PRICER_WATCH_ADAPTERS": "false", "PRICER_WATCH_POLL_SECONDS": str(poll_s), "PRICER_ADMIN_KEY": ADMIN_KEY,
           "PRICER_API_KEY": "", "PRICER_DEFAULT_ADAPTER": adapter, "PRICER_LOG_JSON": "false", "PRICER_SMOKE_ITEMS": "1"}
    if engine == "fake":
        from app.bench.fleet_store import make_store

        store = store or work / "store"
        base, _ = make_store(store, adapter)
        env.update(PRICER_BASE_MODEL=str(base), PRICER_FAKE_LATENCY_S=str(o.fake_latency_s))
    elif store is None:
        raise typer.BadParameter("--engine vllm needs --store (a copy of a store with the base and the adapter's versions)")
    env["PRICER_MODELS_DIR"] = str(store)
    versions = [v.version for v in scan(Path(store) / "adapters") if v.name == adapter and not v.problem]
    if len(versions) < 2:
        raise typer.BadParameter(f"{store}/adapters/{adapter} needs at least two versions, has {len(versions)}")
    started: list[Replica] = []
    try:
        for i in range(o.replicas):
            started.append(launch(f"bench-{i + 1}", env, work))
            if engine == "vllm":  # one model load at a time
                wait_ready(started[-1], o.ready_timeout_s)
        for replica in started:
            wait_ready(replica, o.ready_timeout_s)

        async def main() -> dict:
            limits = httpx.Limits(max_connections=o.concurrency + 2 * o.replicas + 4)
            async with httpx.AsyncClient(timeout=300, limits=limits) as client:
                return await measure(client, started, adapter, versions, o.activations, o.concurrency, o.timeout_s, o.settle_s, poll_s)

        result = asyncio.run(main())
    except (RuntimeError, httpx.HTTPError) as e:
        fail(e)
    finally:
        stop(started)
    result.update(engine=engine, poll_s=poll_s, concurrency=o.concurrency, machine=machine(), logs=str(work))
    typer.echo(f"{o.replicas} replicas ({engine} engine, poll {poll_s} s), {result['activations']} activations under "
               f"load: every replica served each one after p50 {result['propagation_p50_s']} s, max "
               f"{result['propagation_max_s']} s; {result['requests']} requests, {result['failed']} failed, "
               f"{result['wrong_after_convergence']} wrong-version answers after convergence")
    if o.as_json:
        typer.echo(json.dumps(result))