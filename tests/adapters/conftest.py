"""Fixtures for adapter-store tests: a store folder beside the tiny base, settings pointing at it."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.factories import make_lora_adapter

V1, V2 = "20260101-000000-s10", "20260102-000000-s20"


@pytest.fixture
def models_dir(tmp_path):
    (tmp_path / "adapters").mkdir()
    return tmp_path


@pytest.fixture
def store(models_dir, tiny_model_dir):
    """Two valid versions of adapter "pa"; V1 has the better validation score."""
    adapters = models_dir / "adapters"
    make_lora_adapter(tiny_model_dir, adapters, "pa", V1, rank=4, seed=1, mean_error=90.0)
    make_lora_adapter(tiny_model_dir, adapters, "pa", V2, rank=4, seed=2, mean_error=120.0)
    return adapters


def store_settings(models_dir, base_dir, **overrides) -> Settings:
    values = dict(
        models_dir=models_dir,
        base_model=str(base_dir),
        default_adapter="pa",
        adapter_policy="latest",
        watch_adapters=False,
        smoke_items=2,
        max_lora_rank=16,
        keep_loaded=2,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)
