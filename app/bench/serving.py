"""`pricer bench serving`: the default service (the ensemble) against the LLM alone, fresh servers one
after the other, latency and throughput at each concurrency (issues 30 and 31).

    pricer bench serving --data ../shared/data/val.jsonl --concurrency 1,16 --requests 40,200 --json

Each `--config NAME=KEY=V[,KEY=V...]` is one `pricer serve` with those environment overrides (default:
`ensemble`, none, and `llm`, PRICER_ESTIMATOR=llm). For each in turn: the server starts as a child
process on a free loopback port (its log under --logs), is waited on until /readyz answers (its start
seconds recorded), takes the closed-loop load of app.bench.loadgen at each concurrency (a short
warm-up first, not counted; 429s retried after the wait they ask for, as `pricer bench load` does),
and is stopped (SIGTERM, then its process group) before the next starts: never two servers at once.
Around each measured run the service's /metrics gives the seconds each ensemble member took
(pricer_member_duration_seconds) and how often each was left out of an answer. The table compares every config with the one named `llm`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail

REFERENCE = "llm"
DEFAULT_CONFIGS = ["ensemble", "llm=PRICER_ESTIMATOR=llm"]
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MEMBER_METRIC = "pricer_member_duration_seconds"
LEFT_OUT_METRIC = "pricer_member_left_out"


class Options(BaseModel):
    data: Path = Field(Path("../shared/data/val.jsonl"), description="Items JSONL whose texts are sent.")
    config: list[str] = Field(DEFAULT_CONFIGS, description="NAME=KEY=V[,KEY=V...]: one server's environment overrides (NAME alone: none); "
                              "repeat, run in order. Default: ensemble (no overrides) and llm (PRICER_ESTIMATOR=llm).")
    concurrency: str = Field("1,16", description="Requests in flight (closed loop), comma-separated: one run at each.")
    requests: str = Field("40,200", description="Requests measured at each concurrency (one per --concurrency value), after a short warm-up.")
    retries_429: int = Field(20, ge=0, description="Retry a 429 this many times after the wait it asks for; 0: count it as an error at once.")
    api_key: str | None = Field(None, description="Bearer key the servers need, if any.", json_schema_extra=cli(envvar="PRICER_API_KEY"))
    ready_timeout_s: float = Field(900.0, gt=0, description="Most seconds a server may take to answer /readyz.")
    logs: Path = Field(Path("runs/bench"), description="Folder of the servers' logs (serving-NAME-TIME.log).")
    as_json: bool = Field(False, description="Last line: one JSON object.", json_schema_extra=cli(name="--json"))


def parse_configs(specs: list[str]) -> dict[str, dict[str, str]]:
    """`NAME=KEY=V[,KEY=V...]` (or `NAME`) per server -> {name: overrides}, in order; ValueError naming
    the bad one."""
    configs: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        name = name.strip()
        if not ENV_NAME.fullmatch(name.replace("-", "_")):
            raise ValueError(f"--config {spec!r}: expected NAME=KEY=V[,KEY=V...] with a name of letters, digits, - and _")
        if name in configs:
            raise ValueError(f"--config {spec!r}: the name {name!r} is given twice")
        overrides = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not ENV_NAME.fullmatch(key.strip()):
                raise ValueError(f"--config {spec!r}: {part!r} is not KEY=V (expected NAME=KEY=V[,KEY=V...])")
            overrides[key.strip()] = value
        configs[name] = overrides
    if not configs:
        raise ValueError("--config: no server to run")
    return configs


def parse_counts(text: str, flag: str) -> list[int]:
    """`1,16` -> [1, 16]: positive whole numbers, else ValueError naming the flag."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{flag} {text!r}: expected positive whole numbers separated by commas (e.g. 1,16)")
    return [int(p) for p in parts]


def plan(o: Options) -> tuple[dict[str, dict[str, str]], list[tuple[int, int]]]:
    """The servers and the (concurrency, requests) runs, from the options; ValueError when wrong."""
    configs = parse_configs(o.config)
    levels, counts = parse_counts(o.concurrency, "--concurrency"), parse_counts(o.requests, "--requests")
    if len(levels) != len(counts):
        raise ValueError(f"--requests has {len(counts)} value(s) ({o.requests}) for {len(levels)} --concurrency value(s) "
                         f"({o.concurrency}): give one per concurrency")
    return configs, list(zip(levels, counts))


def member_seconds(text: str) -> dict[str, tuple[float, float, float]]:
    """{member: (seconds, calls, times left out)} from the service's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    slots = {f"{MEMBER_METRIC}_sum": 0, f"{MEMBER_METRIC}_count": 1, f"{LEFT_OUT_METRIC}_total": 2}
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            member = sample.labels.get("member")
            if member and sample.name in slots:
                row = out.setdefault(member, [0.0, 0.0, 0.0])
                row[slots[sample.name]] += sample.value  # left out: summed over the reasons
    return {member: tuple(row) for member, row in out.items()}


def member_delta(before: dict, after: dict) -> dict[str, dict]:
    """Each member's seconds, calls, mean ms and times left out between two scrapes."""
    rows = {}
    for member, (seconds, calls, left_out) in after.items():
        s0, n0, l0 = before.get(member, (0.0, 0.0, 0.0))
        if calls > n0:
            rows[member] = {"seconds": round(seconds - s0, 3), "calls": int(calls - n0),
                            "mean_ms": round((seconds - s0) / (calls - n0) * 1000, 1), "left_out": int(left_out - l0)}
    return rows


async def _scrape(client) -> dict:
    try:
        response = await client.get("/metrics")
        return member_seconds(response.text) if response.status_code == 200 else {}
    except Exception:  # optional: a service without the metric, or an unparsable line
        return {}


async def measure(url: str, bodies: list[dict], runs: list[tuple[int, int]], headers: dict, retries_429: int) -> tuple[dict, list[dict]]:
    """The probe's answer, and per (concurrency, requests): the load's summary, 429s retried, member seconds."""
    from app.bench.loadgen import Target

    rows = []
    async with Target(url, "/v1/estimate", bodies, max(c for c, _ in runs), headers, retries_429) as target:
        probe = await target.probe()
        for concurrency, requests in runs:
            await target.run(concurrency, min(requests, 2 * concurrency), warmup=False)  # warm-up, not counted
            retried, before = target.retried, await _scrape(target.client)
            result = await target.run(concurrency, requests, warmup=False)
            members = member_delta(before, await _scrape(target.client))
            rows.append(result.summary() | {"concurrency": concurrency, "retried_429": target.retried - retried, "members": members})
    return probe, rows


def stop_server(process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """SIGTERM to the server (it drains and stops its engine), then to what is left of its process group
    (SIGKILL if that does not end it)."""
    from app.runtime.processes import stop_group

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    stop_group(process)  # the server still running: its whole group, SIGTERM then SIGKILL
    for sig in (signal.SIGTERM, signal.SIGKILL):  # what the server left in its group (an engine core)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if _group_gone(process.pid, 10.0):
            return


def _group_gone(group: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def server_env(environ, overrides: dict[str, str]) -> dict[str, str]:
    """A server's environment: this one without PRICER_VECTOR_CACHE (a build's cache of hidden states
    and embeddings by text: a server reading it answers members from rows an earlier server wrote for
    the same val texts, measured at 32 ms a knowledge call instead of 1.1 s), then the config's overrides."""
    return {**{k: v for k, v in environ.items() if k != "PRICER_VECTOR_CACHE"}, **overrides}


def run_config(name: str, overrides: dict[str, str], o: Options, bodies: list[dict], runs: list[tuple[int, int]]) -> dict:
    """One `pricer serve` with `overrides`: started, waited on, loaded at every concurrency, stopped."""
    from app.bench.raw_vllm import free_port
    from app.bench.readiness import wait_until_ready
    from app.runtime.processes import child_server

    o.logs.mkdir(parents=True, exist_ok=True)
    log = o.logs / f"serving-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    shown = ",".join(f"{k}={v}" for k, v in overrides.items()) or "no overrides"
    typer.echo(f"{name}: pricer serve ({shown}) on {url}, log {log}")
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    headers = {"Authorization": f"Bearer {o.api_key}"} if o.api_key else {}
    with log.open("wb") as out, child_server(command, env=server_env(os.environ, overrides), stdout=out, stderr=subprocess.STDOUT) as process:
        try:
            started = time.perf_counter()
            try:
                wait_until_ready(f"{url}/readyz", o.ready_timeout_s, process, interval_s=0.2)
            except (RuntimeError, TimeoutError) as e:
                tail = log.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{name}: pricer serve did not become ready: {e}; see its log {log}:\n{tail}") from None
            start_s = time.perf_counter() - started
            typer.echo(f"{name}: ready in {start_s:.1f} s")
            probe, rows = asyncio.run(measure(url, bodies, runs, headers, o.retries_429))
            typer.echo(f"{name}: answered by model {probe.get('model')}, adapter {probe.get('adapter') or 'none'}, "
                       f"ensemble {probe.get('ensemble') or 'none (the LLM alone)'}")
        finally:
            stop_server(process)
    return {"overrides": overrides, "log": str(log), "url": url, "start_s": round(start_s, 2), "model": probe.get("model"),
            "adapter": probe.get("adapter"), "ensemble": probe.get("ensemble"), "runs": rows}


def ratios(results: dict[str, dict]) -> dict[str, list[dict]]:
    """Every config against the one named `llm` at each concurrency: requests/s ratio and p50 ratio."""
    if REFERENCE not in results:
        return {}
    out = {}
    for name, result in results.items():
        if name == REFERENCE:
            continue
        out[name] = []
        for mine, ref in zip(result["runs"], results[REFERENCE]["runs"]):
            out[name].append({"concurrency": mine["concurrency"], "throughput_ratio": _ratio(mine["requests_per_s"], ref["requests_per_s"]),
                              "p50_ratio": _ratio(mine["p50_ms"], ref["p50_ms"])})
    return out


def _ratio(mine: float, reference: float) -> float | None:
    value = mine / reference if reference else math.nan
    return round(value, 3) if math.isfinite(value) else None


def table(results: dict[str, dict], compared: dict[str, list[dict]], index: int) -> list[str]:
    """The lines of one concurrency's table."""
    first = next(iter(results.values()))["runs"][index]
    lines = [f"concurrency {first['concurrency']} ({first['requests']} requests each)",
             f"{'config':<14} {'requests/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>6} {'x llm req/s':>11} {'x llm p50':>9}"]
    for name, result in results.items():
        run = result["runs"][index]
        ratio = compared.get(name, [{}] * (index + 1))[index]
        shown = [f"{ratio[k]:.2f}" if ratio.get(k) is not None else "-" for k in ("throughput_ratio", "p50_ratio")]
        lines.append(f"{name:<14} {run['requests_per_s']:>10.2f} {run['p50_ms']:>9.1f} {run['p99_ms']:>9.1f} "
                     f"{sum(run['errors'].values()):>6} {shown[0]:>11} {shown[1]:>9}")
    for name, result in results.items():
        members = result["runs"][index]["members"]
        if members:
            total = sum(m["seconds"] for m in members.values()) or 1.0
            spent = ", ".join(f"{m} {v['seconds']:.1f} s ({v['seconds'] / total:.0%}, mean {v['mean_ms']:.0f} ms, left out {v['left_out']})"
                              for m, v in sorted(members.items(), key=lambda kv: -kv[1]["seconds"]))
            lines.append(f"  {name} member seconds: {spent}")
    return lines


def bench(o: Options) -> None:
    """The default service (the ensemble) against the LLM alone: fresh servers in turn, requests/s and latency per concurrency."""
    from app.bench.loadgen import request_bodies
    from app.config import Settings
    from app.model.hardware import compute_block
    from app.model.item_files import load_items

    try:
        configs, runs = plan(o)
        items = load_items(o.data)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    if not items:
        fail(f"no items in {o.data}")
    block = compute_block(Settings())
    cpu = block["cpu"]
    typer.echo(f"cpu: {cpu['model']}, {cpu['isa']}, native bf16 {'yes' if cpu['native_bf16'] else 'no'}, "
               f"{cpu['cores']} cores; dtype {block['dtype']} ({block['dtype_reason']})")
    bodies = request_bodies(items)
    results = {}
    for name, overrides in configs.items():
        try:
            results[name] = run_config(name, overrides, o, bodies, runs)
        except Exception as e:  # the server would not start, or the load could not reach it
            fail(e, code=1)
    compared = ratios(results)
    for index in range(len(runs)):
        typer.echo("\n".join(table(results, compared, index)))
    if o.as_json:
        typer.echo(json.dumps({"cpu": cpu, "dtype": block["dtype"], "data": str(o.data), "reference": REFERENCE if compared else None,
                               "configs": results, "ratios": compared}))
