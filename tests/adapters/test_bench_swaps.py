"""The swap benchmark's own logic: the label check, and a short run on the fake engine."""

from __future__ import annotations

import httpx

from app.api.app import create_app
from app.bench.swaps import Swap, possibly_active, run
from app.engine.fake import FakeEngine
from tests.adapters.conftest import store_settings
from tests.factories import make_lora_adapter


def test_possibly_active_windows():
    swaps = [Swap("b", 10.0, 11.0), Swap("a", 20.0, 21.0)]
    assert possibly_active("a", 0.0, 5.0, "a", swaps)
    assert possibly_active("a", 10.5, 10.6, "a", swaps)  # the switch to b may not have happened yet
    assert not possibly_active("b", 0.0, 9.0, "a", swaps)  # b was not activated before 10
    assert possibly_active("b", 12.0, 13.0, "a", swaps)
    assert not possibly_active("a", 12.0, 13.0, "a", swaps)  # a was surely off between 11 and 20
    assert possibly_active("a", 25.0, 26.0, "a", swaps)
    assert not possibly_active(None, 0.0, 100.0, "a", swaps)


async def test_short_swap_run_on_fake_engine(models_dir, tiny_model_dir):
    adapters = models_dir / "adapters"
    for i, version in enumerate(("20260101-000000-s1", "20260102-000000-s2", "20260103-000000-s3")):
        make_lora_adapter(tiny_model_dir, adapters, "pa", version, rank=4, seed=i)
    app = create_app(store_settings(models_dir, tiny_model_dir, keep_loaded=1, smoke_items=1), FakeEngine(latency_s=0.01, model_dir=tiny_model_dir))
    bodies = [{"title": f"Lamp {i}"} for i in range(20)]
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            result = await run(client, bodies, concurrency=8, requests=120, swaps=5, api_headers={}, admin_headers={})
    swapping = result["with_swaps"]
    assert result["baseline"]["failed"] == 0
    assert swapping["failed"] == 0 and swapping["mislabelled"] == 0 and swapping["swaps"] == 5
    assert len(swapping["labels"]) >= 2  # responses really came from more than one version
