"""Benchmark commands: `pricer bench` (HTTP load on a running service, optionally against vLLM's
own OpenAI server), `pricer bench-decoding` (decoding scores and interval coverage), `pricer
bench-swaps` (adapter swaps under load)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from app.bench.load import LoadResult, format_summary, merge, run_load
from app.runtime.retry import retry_after_s, retrying  # noqa: F401 (retry_after_s: app.batch.bench's)


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


def _raw_vllm_bodies(spec, model_dir, bodies: list[dict], probe: dict, requests: int) -> tuple[list[dict], tuple | None]:
    """The spec's prompts for the service's item texts, and the spec's sampling."""
    from app.api.schemas import EstimateRequest
    from app.api.serving import item_text

    texts = [item_text(EstimateRequest(**b), spec.char_ceiling) for b in bodies[:requests]]
    adapter, model = None, model_dir.name
    if probe.get("adapter"):
        name, _, version = probe["adapter"].partition("@")
        model = f"{name}-{version}"
        adapter = (model, spec.settings.adapters_dir / name / version)
    comparables = _adapter_comparables(spec, adapter[1]) if adapter else 0
    return [spec.completion_body(p, model) for p in spec.item_prompts(texts, strict=True, comparables=comparables)], adapter


def _adapter_comparables(spec, folder) -> int:
    """The prompt format the served adapter was trained with; its comparables come from the same index."""
    from app.adapters.manifest import Manifest
    from app.index.service import use_index_from_settings
    from app.model.spec import comparables_for_hash

    k = comparables_for_hash(Manifest.read(folder).prompt_hash) or 0
    if k:
        use_index_from_settings(spec, spec.settings)
    return k


async def _alternate(ours: Target, raw: Target, concurrency: int, requests: int, rounds: int) -> tuple[LoadResult, LoadResult]:
    """ours, raw, ours, raw...: one engine computes at a time, and slow drifts of a shared machine
    fall on both sides alike."""
    await raw.probe()
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(await ours.run(concurrency, requests))
        theirs.append(await raw.run(concurrency, requests))
    return merge(mine), merge(theirs)


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
        rounds: int = typer.Option(1, min=1, help="With --compare-vllm: alternate ours and raw vLLM this many times (each round: REQUESTS on each side)."),
        retries_429: int = typer.Option(20, min=0, help="Retry a 429 this many times after the wait it asks for (Retry-After-Ms); 0: count it as an error at once."),
        vllm_log: Path = typer.Option(Path("runs/bench/raw-vllm.log"), help="Where raw vLLM's server log goes."),
        as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
    ) -> None:
        """Load a running service: requests/s, latency p50/p95/p99, errors by status."""
        from app.config import Settings
        from app.model.item_files import load_items

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
        settings = Settings()

        retried = [0]

        async def measure() -> tuple[dict, LoadResult, LoadResult | None]:
            ours = Target(url, "/v1/estimate", bodies, concurrency, headers, retries_429)
            try:
                probe = await ours.probe()
                if not compare_vllm:
                    return probe, merge([await ours.run(concurrency, requests) for _ in range(rounds)]), None
                from app.bench.raw_vllm import raw_vllm_server
                from app.model.spec import ServingSpec
                from app.store.base import resolve_base

                model_dir = resolve_base(settings)
                spec = ServingSpec.load(settings, model_dir)
                raw_bodies, adapter = _raw_vllm_bodies(spec, model_dir, bodies, probe, requests)
                with raw_vllm_server(spec, model_dir, adapter, vllm_log) as raw_url:
                    raw = Target(raw_url, "/v1/completions", raw_bodies, concurrency, {})
                    try:
                        mine, theirs = await _alternate(ours, raw, concurrency, requests, rounds)
                    finally:
                        await raw.client.aclose()
                return probe, mine, theirs
            finally:
                retried[0] = ours.retried
                await ours.client.aclose()

        try:
            probe, mine, theirs = asyncio.run(measure())
        except Exception as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        ours = mine.summary()
        label = f"pricer ({probe.get('model')}, adapter {probe.get('adapter') or 'none'}, concurrency {concurrency})"
        typer.echo(format_summary(label, ours))
        result = dict(ours, concurrency=concurrency, rounds=rounds, model=probe.get("model"), adapter=probe.get("adapter"),
                      retried_429=retried[0])
        if retried[0]:
            typer.echo(f"{retried[0]} answers of 429 were retried after the wait they asked for (warm-up included; the waits are in the latencies above)")
        if theirs is not None:
            raw = theirs.summary()
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
