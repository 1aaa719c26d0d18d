"""A store shared by the replicas: adapter "pa" in three versions (V3 of rank 8, the others 4), built
once per module and copied into each test's store."""

from __future__ import annotations

import shutil

import pytest

from tests.factories import make_lora_adapter

V1, V2, V3 = "20260101-000000-s10", "20260102-000000-s20", "20260103-000000-s30"


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("fleet-built")
    make_lora_adapter(tiny_model_dir, root / "adapters", "pa", V1, rank=4, seed=1, mean_error=100.0)
    make_lora_adapter(tiny_model_dir, root / "adapters", "pa", V2, rank=4, seed=2, mean_error=90.0)
    make_lora_adapter(tiny_model_dir, root / "adapters", "pa", V3, rank=8, seed=3, mean_error=80.0)
    return root


@pytest.fixture
def shared_store(tmp_path, built):
    store = tmp_path / "store"
    shutil.copytree(built, store)
    return store
