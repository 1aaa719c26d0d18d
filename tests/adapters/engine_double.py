"""A minimal engine double for the manager's own bookkeeping (which versions are loaded under
which ids, what a lease hands out). It prices nothing meaningfully; the real-engine behaviour is
covered by tests/e2e/test_hotload.py on vLLM."""

from __future__ import annotations

import asyncio

from app.engine.base import AdapterLoadError, AdapterRef, Engine
from app.model.prices import PriceEstimate


class RecordingEngine(Engine):
    model_name = "double"

    def __init__(self, max_rank: int = 16, delay: float = 0.0):
        self.loaded: dict[int, AdapterRef] = {}
        self.events: list[tuple[str, str, int]] = []
        self.max_rank = max_rank
        self.delay = delay
        self.refuse: set[str] = set()  # labels add_adapter refuses
        self.nan_for: set[str] = set()  # labels whose prices come back NaN

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def estimate(self, texts, adapter: AdapterRef | None = None):
        if adapter is not None and adapter.lora_id not in self.loaded:
            raise RuntimeError(f"adapter {adapter.label} (id {adapter.lora_id}) is not loaded")
        await asyncio.sleep(self.delay)
        price = float("nan") if adapter is not None and adapter.label in self.nan_for else 10.0
        return [PriceEstimate(price=price, low=price, high=price, text="10.00") for _ in texts]

    async def add_adapter(self, ref: AdapterRef) -> None:
        await asyncio.sleep(self.delay)
        if ref.label in self.refuse:
            raise AdapterLoadError(f"refused {ref.label}")
        assert ref.lora_id not in self.loaded, "lora ids must be fresh"
        self.loaded[ref.lora_id] = ref
        self.events.append(("add", ref.label, ref.lora_id))

    async def remove_adapter(self, ref: AdapterRef) -> None:
        self.loaded.pop(ref.lora_id, None)
        self.events.append(("remove", ref.label, ref.lora_id))

    async def check_health(self) -> None: ...

    @property
    def ready(self) -> bool:
        return True

    def loaded_labels(self) -> set[str]:
        return {r.label for r in self.loaded.values()}
