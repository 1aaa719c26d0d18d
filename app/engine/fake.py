"""A deterministic stand-in engine for tests of the HTTP layer's own logic (routing, errors,
limits, metrics). It is never evidence that inference works: that is tested on the real vLLM
engine with a tiny model.

Prices come from a hash of the text (the same text always gets the same price), each adapter
version scales them by its own factor (`price_for`), so tests can see which adapter reached the
engine. Selected by PRICER_ENGINE=fake (app/engine/factory.py) or passed to create_app by tests. Latency, start time, failures and death are knobs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path

from app.engine.base import AdapterLoadError, AdapterRef, Engine, EngineDeadError, EngineError, PriceEstimate


class FakeEngine(Engine):
    def __init__(
        self,
        model_name: str = "fake-model",
        latency_s: float = 0.0,
        start_delay_s: float = 0.0,
        model_dir: Path | None = None,
        capacity: int | None = None,
    ):
        """`capacity`: calls computed at once (the rest wait their turn, as on a saturated engine);
        None: every call runs at once."""
        self.model_name = model_name
        self._slots = asyncio.Semaphore(capacity) if capacity else None
        self.model_dir = model_dir
        self.latency_s = latency_s
        self.start_delay_s = start_delay_s
        self.fail_with: Exception | None = None  # raised by every estimate while set
        self.fail_for: set[str] = set()  # adapter labels whose estimates raise EngineError
        self.refuse_adapters: set[str] = set()  # adapter names whose add_adapter fails
        self.loaded: dict[int, AdapterRef] = {}
        self.calls: list[tuple[list[str], str | None]] = []  # (texts, adapter label) per estimate
        self.in_flight = 0
        self.max_in_flight = 0
        self._started = False
        self._dead = False
        self.closed = False

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.start_delay_s:
            await asyncio.sleep(self.start_delay_s)
        self._started = True

    async def close(self) -> None:
        self.closed = True
        self._started = False

    def kill(self) -> None:
        """Simulate the engine dying (a crashed engine core)."""
        self._dead = True

    @property
    def ready(self) -> bool:
        return self._started and not self._dead

    async def check_health(self) -> None:
        if self._dead:
            raise EngineDeadError("fake engine was killed")

    # -------------------------------------------------------------- inference
    async def estimate(self, texts: Sequence[str], adapter: AdapterRef | None = None) -> list[PriceEstimate]:
        if self._dead:
            raise EngineDeadError("fake engine was killed")
        if not self._started:
            raise EngineError("fake engine is not started")
        if adapter is not None and adapter.lora_id not in self.loaded:
            raise EngineError(f"adapter {adapter.label} (lora_id {adapter.lora_id}) is not loaded")
        self.calls.append((list(texts), adapter.label if adapter else None))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._slots is not None:
                async with self._slots:
                    await asyncio.sleep(self.latency_s)
            elif self.latency_s:
                await asyncio.sleep(self.latency_s)
            if self.fail_with is not None:
                raise self.fail_with
            if adapter is not None and adapter.label in self.fail_for:
                raise EngineError(f"fake engine fails for {adapter.label}")
            return [self._price(text, adapter) for text in texts]
        finally:
            self.in_flight -= 1

    @staticmethod
    def base_price(text: str) -> float:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        return float(1 + int.from_bytes(digest[:4], "big") % 999)

    @classmethod
    def price_for(cls, text: str, adapter_label: str | None = None) -> float:
        """What the fake answers for `text` with the adapter `name@version` (None: the base model):
        each adapter scales prices by its own factor, so a test can tell which one reached the engine."""
        price = cls.base_price(text)
        if adapter_label is not None:
            factor = 1.5 + int(hashlib.sha256(adapter_label.encode()).hexdigest()[:8], 16) % 10 / 10
            price = round(price * factor, 2)
        return price

    def _price(self, text: str, adapter: AdapterRef | None) -> PriceEstimate:
        price = self.price_for(text, adapter.label if adapter is not None else None)
        return PriceEstimate(price=price, low=round(price * 0.8, 2), high=round(price * 1.25, 2), text=f"{price:.2f}")

    # -------------------------------------------------------------- adapters
    async def add_adapter(self, ref: AdapterRef) -> None:
        if self._dead:
            raise EngineDeadError("fake engine was killed")
        if ref.name in self.refuse_adapters or not Path(ref.path).exists():
            raise AdapterLoadError(f"fake engine refuses {ref.label} at {ref.path}")
        self.loaded[ref.lora_id] = ref

    async def remove_adapter(self, ref: AdapterRef) -> None:
        self.loaded.pop(ref.lora_id, None)
