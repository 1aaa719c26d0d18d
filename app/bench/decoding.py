"""Decoding measurement: from one greedy generation per item, score three point prices (the greedy
text, the distribution's mean, its median) and measure how often the truth falls inside the
served [low, high] interval at the nominal level.

`pricer bench decoding --data FILE [--adapter A] [--limit N] [--json]`
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import cli, fail
from app.model.prices import NoPriceError, PriceEstimate, parse_price


def summarize(truths: Sequence[float], estimates: Sequence[PriceEstimate], level: float) -> dict:
    """Scores per point rule, interval coverage and width. Pure: testable without an engine."""
    from app.evaluation.metrics import score

    if not estimates or len(truths) != len(estimates):
        raise ValueError(f"{len(estimates)} estimates for {len(truths)} truths")
    greedy = []
    for e in estimates:
        try:
            greedy.append(parse_price(e.text))
        except NoPriceError:
            greedy.append(e.detail.get("median", e.price))
    points = {
        "greedy": greedy,
        "mean": [e.detail.get("mean", e.price) for e in estimates],
        "median": [e.detail.get("median", e.price) for e in estimates],
        "served": [e.price for e in estimates],
    }
    inside = sum(e.low <= t <= e.high for t, e in zip(truths, estimates))
    widths = sorted(e.high - e.low for e in estimates)
    return {
        "n": len(truths),
        "interval_level": level,
        "coverage": inside / len(truths),
        "median_interval_width": widths[len(widths) // 2],
        "distinct_greedy": len(set(greedy)),
        "scores": {name: score(truths, guesses).to_dict() for name, guesses in points.items()},
    }


class Options(BaseModel):
    data: Path = Field(description="Items JSONL (e.g. ../shared/data/val.jsonl).")
    adapter: str | None = Field(None, description="name[@version] or a version folder in a store; default: the version `pricer serve` would answer with.")
    limit: int | None = Field(None, description="Only the first N items.")
    as_json: bool = Field(False, description="Last line: one JSON object.", json_schema_extra=cli(name="--json"))


def bench(o: Options) -> None:
    """Interval coverage and greedy / mean / median scores of the in-process LLM on DATA."""
    from app.config import Settings
    from app.pricing.llm_estimator import LlmEstimator, store_pin
    from app.model.item_files import load_items

    settings = Settings()
    try:
        items = load_items(o.data, limit=o.limit)
        estimator = LlmEstimator(*store_pin(settings, o.adapter))
    except (ValueError, FileNotFoundError) as e:
        fail(e)
    started = time.perf_counter()
    try:
        estimates = estimator.estimates(items)
    except ValueError as e:  # an adapter pin that does not resolve
        fail(e)
    finally:
        estimator.close()
    result = summarize([i.price for i in items], estimates, settings.interval_level)
    result.update(model=settings.base_model, adapter=estimator.label, seconds=round(time.perf_counter() - started, 1))
    typer.echo(
        f"{result['n']} items, adapter {result['adapter']}: truth inside [low, high] "
        f"{result['coverage']:.1%} (nominal {settings.interval_level:.0%}), median width ${result['median_interval_width']:.0f}"
    )
    for name, s in result["scores"].items():
        typer.echo(f"  {name:7s} mean error ${s['mean_error']:.2f}  RMSLE {s['rmsle']:.2f}  hits {s['hit_rate']:.1%}")
    if o.as_json:
        typer.echo(json.dumps(result))
