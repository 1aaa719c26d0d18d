"""Benchmark commands: `pricer bench` (HTTP load on a running service, optionally against vLLM's
own OpenAI server), `pricer bench-decoding` (decoding scores and interval coverage), `pricer
bench-swaps` (adapter swaps under load)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from app.bench.load import format_summary, run_load


def request_bodies(items) -> list[dict]:
    """POST /v1/estimate bodies: the title, and the rest of the curated text as the description."""
    bodies = []
    for item in items:
        rest = item.text[len(item.title):].lstrip() if item.text.startswith(item.title) else item.text
        bodies.append({"title": item.title, "description": rest or None})
    return bodies


async def _drive(url: str, path: str, bodies: list[dict], concurrency: int, requests: int, headers: dict) -> tuple[dict, dict]:
    """Probe once (the answer names model and adapter), warm up, then measure."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits, headers=headers) as client:
        probe = await client.post(path, json=bodies[0])
        if probe.status_code != 200:
            raise RuntimeError(f"{url}{path} answered {probe.status_code}: {probe.text[:300]}")

        async def send(i: int) -> int:
            return (await client.post(path, json=bodies[i % len(bodies)])).status_code

        await run_load(send, concurrency, min(requests, 2 * concurrency))  # warm-up, not counted
        result = await run_load(send, concurrency, requests)
    return result.summary(), probe.json()


def _raw_vllm(settings, bodies, probe: dict, concurrency: int, requests: int, log_path: Path) -> dict:
    """The same prompts and sampling through vLLM's own OpenAI server, started here and stopped."""
    from transformers import AutoTokenizer

    from app.api.schemas import EstimateRequest
    from app.bench.raw_vllm import completion_bodies, raw_vllm_server
    from app.decoding import answer_token_ids
    from app.engine.prompts import PromptCutter, token_budget
    from app.models_store import resolve_base

    model_dir = resolve_base(settings)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cutter = PromptCutter(tokenizer, token_budget(settings))
    texts = [EstimateRequest(**b).item_text(settings.prompt_token_budget) for b in bodies[:requests]]
    prompts = [cutter.prompt_text_one(t) for t in texts]
    adapter = None
    model = model_dir.name
    if probe.get("adapter"):
        name, _, version = probe["adapter"].partition("@")
        model = f"{name}-{version}"
        adapter = (model, settings.adapters_dir / name / version)
    completions = completion_bodies(prompts, model, settings, answer_token_ids(tokenizer))
    with raw_vllm_server(settings, model_dir, adapter, log_path) as url:
        summary, _ = asyncio.run(_drive(url, "/v1/completions", completions, concurrency, requests, {}))
    return summary


def register(cli: typer.Typer) -> None:
    from app.bench import decoding, swaps

    @cli.command("bench")
    def bench(
        url: str = typer.Option("http://127.0.0.1:8000", help="A running Pricer service."),
        data: Path = typer.Option(..., help="Items JSONL whose texts are sent (e.g. ../shared/data/val.jsonl)."),
        concurrency: int = typer.Option(8, min=1, help="Requests in flight (closed loop)."),
        requests: int = typer.Option(200, min=1, help="Requests measured (after a short warm-up)."),
        compare_vllm: bool = typer.Option(False, "--compare-vllm", help="Then run the same load on vLLM's own OpenAI server (same model, adapter, prompts, sampling)."),
        api_key: str = typer.Option(None, envvar="PRICER_API_KEY", help="Bearer key of the service, if it needs one."),
        vllm_log: Path = typer.Option(Path("runs/bench/raw-vllm.log"), help="Where raw vLLM's server log goes."),
        as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
    ) -> None:
        """Load a running service: requests/s, latency p50/p95/p99, errors by status."""
        from app.config import Settings
        from app.items import load_items

        try:
            items = load_items(data)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        if not items:
            typer.echo(f"error: no items in {data}", err=True)
            raise typer.Exit(2)
        bodies = request_bodies(items)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            ours, probe = asyncio.run(_drive(url, "/v1/estimate", bodies, concurrency, requests, headers))
        except Exception as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        label = f"pricer ({probe.get('model')}, adapter {probe.get('adapter') or 'none'}, concurrency {concurrency})"
        typer.echo(format_summary(label, ours))
        result = dict(ours, concurrency=concurrency, model=probe.get("model"), adapter=probe.get("adapter"))
        if compare_vllm:
            raw = _raw_vllm(Settings(), bodies, probe, concurrency, requests, vllm_log)
            typer.echo(format_summary(f"raw vLLM (same model and prompts, concurrency {concurrency})", raw))
            ratio = ours["requests_per_s"] / raw["requests_per_s"] if raw["requests_per_s"] else 0.0
            added = ours["p50_ms"] - raw["p50_ms"]
            typer.echo(f"throughput ours / vLLM: {ratio:.3f}; p50 added by our layer: {added:+.1f} ms")
            result.update(
                vllm_requests_per_s=raw["requests_per_s"], vllm_p50_ms=raw["p50_ms"], vllm_p95_ms=raw["p95_ms"],
                vllm_p99_ms=raw["p99_ms"], vllm_errors=raw["errors"], ratio=round(ratio, 4), added_p50_ms=round(added, 2),
            )
        if as_json:
            typer.echo(json.dumps(result))

    decoding.register(cli)
    swaps.register(cli)
