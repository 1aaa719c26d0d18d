"""`pricer bench load` (also `pricer bench` with options and no name): a running service under HTTP
load, requests/s and latency; with `--compare-vllm`, the same load on vLLM's own OpenAI server
(same model, adapter, prompts and sampling: app.bench.raw_vllm), alternated round by round. The
server runs the engine of this command's PRICER_ADAPTER_MODE (app.bench.engine_mode: with `merged`,
the adapter's merged folder as its model, compiled, no LoRA), which must be the service's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.bench.loadgen import LoadResult, Target, format_summary, merge, request_bodies
from app.cli_options import cli, fail


class Options(BaseModel):
    url: str = Field("http://127.0.0.1:8000", description="A running Pricer service.")
    data: Path = Field(description="Items JSONL whose texts are sent (e.g. ../shared/data/val.jsonl).")
    concurrency: int = Field(8, ge=1, description="Requests in flight (closed loop).")
    requests: int = Field(200, ge=1, description="Requests measured (after a short warm-up).")
    compare_vllm: bool = Field(False, description="Then run the same load on vLLM's own OpenAI server (same model, adapter, prompts, sampling).",
                               json_schema_extra=cli(name="--compare-vllm"))
    api_key: str | None = Field(None, description="Bearer key of the service, if it needs one.", json_schema_extra=cli(envvar="PRICER_API_KEY"))
    rounds: int = Field(1, ge=1, description="With --compare-vllm: alternate ours and raw vLLM this many times (each round: REQUESTS on each side).")
    retries_429: int = Field(20, ge=0, description="Retry a 429 this many times after the wait it asks for (Retry-After-Ms); 0: count it as an error at once.")
    vllm_log: Path = Field(Path("runs/bench/raw-vllm.log"), description="Where raw vLLM's server log goes.")
    as_json: bool = Field(False, description="Last line: one JSON object.", json_schema_extra=cli(name="--json"))


def _raw_vllm_bodies(spec, model_dir, bodies: list[dict], probe: dict, requests: int) -> tuple[list[dict], dict]:
    """The spec's prompts for the service's item texts (in the format the served adapter was trained
    with: its comparables from the same index), and the spec's sampling; and how raw vLLM serves the
    adapter the service answered with (raw_vllm_server's adapter, mode and weights): in lora mode
    through --lora-modules, in merged mode as the store's cached merge of it."""
    from app.bench.engine_mode import merged_weights
    from app.bench.raw_offline import served_adapter
    from app.bench.raw_vllm import served_model
    from app.pricing.fields import ItemFields
    from app.pricing.text import item_text

    texts = [item_text(ItemFields(**b), spec.char_ceiling) for b in bodies[:requests]]
    label, mode = probe.get("adapter"), spec.settings.adapter_mode
    folder, comparables = served_adapter(spec.settings, label, spec)
    served = {"adapter": (f"{folder.parent.name}-{folder.name}", folder) if folder and mode == "lora" else None, "mode": mode,
              "weights": merged_weights(spec.settings, model_dir, label) if mode == "merged" else None}
    model = served_model(spec, model_dir, **served)
    return [spec.completion_body(p, model) for p in spec.item_prompts(texts, strict=True, comparables=comparables)], served


async def _alternate(ours: Target, raw: Target, concurrency: int, requests: int, rounds: int) -> tuple[LoadResult, LoadResult]:
    """ours, raw, ours, raw...: one engine computes at a time, and slow drifts of a shared machine
    fall on both sides alike."""
    await raw.probe()
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(await ours.run(concurrency, requests))
        theirs.append(await raw.run(concurrency, requests))
    return merge(mine), merge(theirs)


def bench(o: Options) -> None:
    """Load a running service: requests/s, latency p50/p95/p99, errors by status."""
    from app.config import Settings
    from app.model.item_files import load_items

    url, concurrency, requests, rounds = o.url, o.concurrency, o.requests, o.rounds
    try:
        items = load_items(o.data)
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    if not items:
        fail(f"no items in {o.data}")
    bodies = request_bodies(items)
    headers = {"Authorization": f"Bearer {o.api_key}"} if o.api_key else {}
    settings = Settings()

    engine = None  # with --compare-vllm: how raw vLLM ran ("lora, eager", "merged, compiled")

    async def measure() -> tuple[dict, LoadResult, LoadResult | None, int]:
        nonlocal engine
        async with Target(url, "/v1/estimate", bodies, concurrency, headers, o.retries_429) as ours:
            probe = await ours.probe()
            if not o.compare_vllm:
                return probe, merge([await ours.run(concurrency, requests) for _ in range(rounds)]), None, ours.retried
            from app.bench.engine_mode import describe, engine_kwargs
            from app.bench.raw_vllm import raw_vllm_server
            from app.model.hardware import resolve_device
            from app.model.spec import ServingSpec
            from app.store.base import resolve_base

            model_dir = resolve_base(settings)
            spec = ServingSpec.load(settings, model_dir)
            raw_bodies, served = _raw_vllm_bodies(spec, model_dir, bodies, probe, requests)
            engine = describe(served["mode"], engine_kwargs(spec, model_dir, served["mode"]), resolve_device(settings))
            with raw_vllm_server(spec, model_dir, served["adapter"], o.vllm_log, mode=served["mode"], weights=served["weights"]) as raw_url:
                async with Target(raw_url, "/v1/completions", raw_bodies, concurrency, {}) as raw:
                    mine, theirs = await _alternate(ours, raw, concurrency, requests, rounds)
            return probe, mine, theirs, ours.retried

    try:
        probe, mine, theirs, retried = asyncio.run(measure())
    except Exception as e:
        fail(e, code=1)
    ours = mine.summary()
    label = f"pricer ({probe.get('model')}, adapter {probe.get('adapter') or 'none'}, {settings.adapter_mode} mode, concurrency {concurrency})"
    typer.echo(format_summary(label, ours))
    result = dict(ours, concurrency=concurrency, rounds=rounds, model=probe.get("model"), adapter=probe.get("adapter"),
                  adapter_mode=settings.adapter_mode, retried_429=retried)
    if retried:
        typer.echo(f"{retried} answers of 429 were retried after the wait they asked for (warm-up included; the waits are in the latencies above)")
    if theirs is not None:
        raw = theirs.summary()
        typer.echo(format_summary(f"raw vLLM ({engine}, same model and prompts, concurrency {concurrency})", raw))
        ratio = ours["requests_per_s"] / raw["requests_per_s"] if raw["requests_per_s"] else 0.0
        added = ours["p50_ms"] - raw["p50_ms"]
        typer.echo(f"throughput ours / vLLM: {ratio:.3f}; p50 added by our layer: {added:+.1f} ms")
        result.update({f"vllm_{key}": raw[key] for key in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors")},
                      vllm_engine=engine, ratio=round(ratio, 4), added_p50_ms=round(added, 2))
    if o.as_json:
        typer.echo(json.dumps(result))
