"""Serving specs for the benches' pure tests: engine arguments and sampling without a tokenizer."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.model.spec import ServingSpec

BASE = Path("/store/base/tiny")


def bare_spec(**settings) -> ServingSpec:
    """A spec whose engine arguments and sampling need no tokenizer (engine arguments read only the settings)."""
    spec = ServingSpec.__new__(ServingSpec)
    spec.settings = Settings(_env_file=None, device="cpu", models_dir=Path("/store"), **settings)
    spec.max_tokens, spec.stop, spec.top_logprobs, spec.budget = 6, ".", 20, 400
    spec.__dict__["answer_token_ids"] = [15, 16, 17]
    return spec


def merged_engine_kwargs(spec: ServingSpec, model_dir: Path) -> dict:
    """What MergedVllmEngine gives vLLM: the spec's engine arguments with the settings in merged mode."""
    merged = ServingSpec.__new__(ServingSpec)
    merged.__dict__.update(spec.__dict__, settings=spec.settings.model_copy(update={"adapter_mode": "merged"}))
    return merged.engine_kwargs(model_dir)
