"""Fixtures for adapter-store tests: a store folder beside the tiny base, settings pointing at it."""

from __future__ import annotations

import pytest

from app.config import Settings


@pytest.fixture
def models_dir(tmp_path):
    (tmp_path / "adapters").mkdir()
    return tmp_path


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
