"""Settings: one object, built once from PRICER_* variables (and .env), passed down.

Every stage reads the same Settings so that the device (CPU or GPU), the model and the store are
configuration, never a fork of the code. The fields are declared in sections, one class per concern
(the service, the store, the engine, batch pricing, the frontier API, curation); `Settings` is all
of them in one object. Every field keeps its flat PRICER_* name, so no deployment changes, and a
component can name the one section it reads (e.g. `EngineSettings`). Each field's description is
the documentation that docs/operations.md's settings table is made from.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRICER_", env_file=".env", extra="ignore")


class ServiceSettings(_Section):
    """The HTTP service: address, keys, limits, shutdown, logs, and the engine stand-in for HTTP tests."""

    host: str = Field("127.0.0.1", description="Address the service listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port the service listens on.")
    api_key: SecretStr | None = Field(None, description="Bearer key for estimates; unset: none needed.")
    admin_key: SecretStr | None = Field(None, description="Bearer key for the admin routes (adapters, ensembles, fleet); unset: they answer only loopback clients of a service bound to loopback.")
    max_batch: int = Field(64, ge=1, description="Most items in one POST /v1/estimate/batch (over it: 413).")
    max_inflight: int | None = Field(None, ge=1, description="Most authenticated requests in flight before answering 429; unset: 2 x max_num_seqs (queueing stays bounded).")
    admission_target_s: float | None = Field(None, ge=0, description="Admit only as many requests as the service answers within this many seconds at its measured throughput; the rest get 429 with Retry-After and Retry-After-Ms at once (app/api/admission.py). Unset: 0.8 x PRICER_MEMBER_TIMEOUT_S, so an admitted request is answered before its ensemble members' deadline; 0: only PRICER_MAX_INFLIGHT limits.")
    admission_floor: int = Field(4, ge=1, description="The service always admits this many requests at once, however slow it measures (the latency-derived limit never goes below it).")
    max_inflight_per_client: float = Field(0.5, gt=0, le=1, description="Share of the in-flight slots one client (one key, or one address without keys) may hold.")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="Largest request body accepted (over it: 413).")
    body_timeout_s: float = Field(10.0, gt=0, description="Most seconds a client may take to send a request body (over it: 408).")
    max_header_bytes: int = Field(32_768, ge=1024, description="Largest request line plus headers accepted (over it: 431).")
    shutdown_timeout_s: float = Field(20.0, gt=0, description="Drain period on SIGTERM/SIGINT; each engine call on the way out is bounded too. A second signal exits at once.")
    engine_death_exit: bool = Field(True, description="Exit non-zero when the engine dies (a supervisor restarts the service); false: stay up answering 503.")
    engine: Literal["vllm", "fake"] = Field("vllm", description="vllm: the real engine; fake: a deterministic stand-in that needs no model (HTTP tests and demos only, never evidence that inference works).")
    fake_latency_s: float = Field(0.0, ge=0, description="With engine=fake: seconds each engine call takes.")
    fake_capacity: int | None = Field(None, ge=1, description="With engine=fake: calls computed at once (the rest queue, as on a saturated engine); unset: all at once.")
    log_level: str = Field("info", description="Log level (debug, info, warning, error).")
    log_json: bool = Field(True, description="Structured JSON logs (one object a line).")


class StoreSettings(_Section):
    """The model store and what answers from it: base model, adapter and ensemble policies, the index, the fleet, the vector cache."""

    models_dir: Path = Field(Path("models"), description="The model store: base/ and adapters/ below it.")
    base_model: str = Field("smollm2-135m", description="A name under the store's base/, or a path to an HF-format model folder.")
    adapter_policy: Literal["manual", "latest", "best"] = Field("best", description="Which adapter version becomes active: manual, latest or best (validation mean error).")
    default_adapter: str | None = Field("pricer-smollm2", description="Adapter name served when a request pins none and no active state is persisted; empty: the base model.")
    keep_loaded: int = Field(2, ge=1, description="Adapter versions kept loaded in the engine for quick rollback.")
    watch_adapters: bool = Field(True, description="Watch the adapter store for new versions while running.")
    watch_poll_seconds: float = Field(2.0, gt=0, description="Polling interval when file events are unavailable; also how often each replica reads the desired state in the store (and so how fast an activation reaches every replica) and writes its heartbeat. Keep it at most 5.")
    replica_id: str | None = Field(None, description="This replica's name in the fleet view (GET /v1/fleet); unset: <host name>-<port>.")
    advertise_url: str | None = Field(None, description="The address this replica is reached at, shown in the fleet view; unset: http://<PRICER_HOST, or the host name for 0.0.0.0>:<port>.")
    fleet_stale_s: float = Field(15.0, gt=0, description="A replica whose heartbeat is older than this is left out of the fleet view (its file is removed after ten times this).")
    smoke_items: int = Field(4, ge=0, description="Items a new adapter must price (parseably) before it can be activated.")
    knowledge_base: str = Field("qwen2.5-coder-1.5b", description="The base model the `knowledge` member reads out (a name under the store's base/, prepared by `make base-qwen`, or a path to an HF-format model folder).")
    comparables_min_similarity: float = Field(0.0, ge=0, le=1, description="Comparables less similar than this (cosine, 0-1) to the item are not shown; the answer says how many were held back (`comparables_note`).")
    vector_cache: Path | None = Field(None, description="An SQLite file (created on first use) that keeps per-item vectors across processes: MiniLM embeddings (embed-gbm, embed-rf, knn, the index) and the hidden-state features of llm-head and knowledge, each under its model's fingerprint and configuration, so that refitting over the same texts (a learning-curve sweep, several seeds) computes each text once. Several processes may share it; a broken file is reported once and bypassed. Unset: off (nothing is kept between processes).")
    embed_batch_max: int = Field(64, ge=0, description="MiniLM embeddings of concurrent requests are computed together, at most this many texts a call, in one worker thread that knn, embed-gbm, embed-rf, the comparables and the retrieval-augmented prompt share (app/runtime/microbatch.py; a caller never waits past its member's deadline). A call with more uncached texts than this (an index build, an evaluation) embeds them directly, with its progress bar. 0: no batching, each caller embeds its own texts.")
    embed_batch_wait_ms: float = Field(2.0, ge=0, description="Most milliseconds the embedding worker waits, from the first text's arrival, for other requests' texts to join its call (none once PRICER_EMBED_BATCH_MAX texts wait); texts that arrive while a call runs join the next one anyway.")
    embed_cores: str = Field("auto", pattern=r"^(auto|none|[0-9][0-9,\- ]*)$", description="CPUs the embedding worker thread runs on, with one torch thread per physical core among them (the rest of the process is left as it is): auto = the cores vLLM's CPU engine does not compute on (under VLLM_CPU_OMP_THREADS_BIND=auto the one it keeps for its scheduler and frontend: CPU 1 of a 2-core machine; app/engine/cpu_binding.py) when the engine is vLLM on the CPU, else not pinned; a CPU list such as `1` or `2-3`; none: never pinned. Where no core is free of vLLM (one core) the worker is not pinned.")
    index_dir: Path | None = Field(None, description="The comparables index (`pricer index build`): a version folder or a root whose newest version is served; unset: the store's index/.")
    estimator: Literal["ensemble", "llm"] = Field("ensemble", description="What answers estimates: ensemble (the stacked bundle, the LLM one member) or llm (the LLM alone).")
    ensemble_dir: Path | None = Field(None, description="The ensemble bundle: a version folder (served, never swapped) or a root whose versions are hot-loaded; unset: the store's ensembles/pricer-ensemble/.")
    ensemble_policy: Literal["manual", "latest", "best"] = Field("latest", description="Which ensemble bundle version becomes active when one appears: manual (only by an admin call), latest, or best (recorded cross-validated mean error).")
    member_text_tokens: int = Field(180, ge=0, description="With estimator=ensemble: the members other than the LLM read the item text cut to this many tokens of the base model's tokenizer, as the curated texts they were fitted on are (160 Llama 3.1 tokens: about 178 SmolLM2 tokens on train.jsonl); 0: the whole text.")
    member_timeout_s: float = Field(10.0, gt=0, description="With estimator=ensemble: seconds a member may take on one request (of up to 16 items; a larger batch request gets this per 16 items) before it is left out of that answer (the LLM on the CPU takes 6-7 s at 16 requests in flight).")
    member_cores: str = Field("none", pattern=r"^(auto|none|[0-9][0-9,\- ]*)$", description="With estimator=ensemble: CPUs the in-process members' calls (knowledge, llm-head, the gradient-boosted members, knn) compute on, with one torch thread per physical core among them: auto = the cores vLLM's CPU engine does not compute on (as PRICER_EMBED_CORES), a CPU list, or none (the OS places them, torch's default thread count).")
    placed_members: list[str] = Field(["knowledge"], description="With estimator=ensemble and PRICER_MEMBER_CORES set: the members whose calls run there (the others stay where the OS puts them). JSON list, e.g. [\"knowledge\", \"llm-head\"].")
    member_gather_ms: float = Field(0.0, ge=0, description="With estimator=ensemble: milliseconds a member (other than the LLM) waits, from a request's arrival, for other requests to join its predict call (app/ensemble/runner.py); 0: the requests already waiting go at once (those arriving while a call runs join the next one anyway).")
    rollback_after_failures: int = Field(5, ge=1, description="Consecutive failed estimates of the active adapter version after which it is rolled back to the previous one.")


class EngineSettings(_Section):
    """The engine (vLLM): device, dtype, lengths, LoRA slots or merged weights, memory, decoding."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when a GPU is visible, else the CPU.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field("auto", description="Compute dtype of the model (vLLM, llm-head, training, validation): auto = bfloat16 on a GPU and on a CPU with native bf16 (avx512_bf16, amx_bf16), float32 on other CPUs, where bf16 is emulated and about 40x slower (app/model/hardware.py).")
    max_model_len: int = Field(512, ge=64, description="Engine context length (prompt + answer).")
    prompt_token_budget: int = Field(182, ge=16, description="Most prompt tokens (comparables included); longer descriptions are cut with the model's tokenizer. 182: the length the shipped adapter was trained at (192 with its answer).")
    max_lora_rank: int = Field(32, ge=1, description="Largest LoRA rank the engine accepts.")
    max_loras: int = Field(4, ge=1, description="Adapters resident in one batch.")
    adapter_mode: Literal["lora", "merged"] = Field("lora", description="How the engine serves adapter versions: lora = vLLM's LoRA (several versions resident and served in one batch; vllm-cpu then runs eagerly); merged = each version merged into the base and loaded into the running engine in place, so vLLM's compiled CPU path stays on (one version's weights at a time: a request for another waits for a swap; app/engine/merged.py, docs/inference.md).")
    max_num_seqs: int = Field(64, ge=1, description="Most sequences the engine schedules at once.")
    cpu_preload: bool = Field(True, description="On the CPU, preload tcmalloc (libtcmalloc_minimal.so.4, Debian libtcmalloc-minimal4) into vLLM's engine process where it is installed, as vLLM's CPU guide asks: measured +20% requests/s (docs/inference.md).")
    kv_cache_gib: float = Field(1.0, gt=0, description="KV cache size on the CPU (VLLM_CPU_KVCACHE_SPACE), GiB.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine spans (tensor parallelism).")
    top_logprobs: int = Field(20, ge=1, le=20, description="Alternatives per decoding step used to build the price distribution.")
    interval_level: float = Field(0.8, gt=0, lt=1, description="Nominal coverage of the [low, high] interval.")
    point_rule: Literal["auto", "mean", "median", "greedy"] = Field("auto", description="Point price from the decoded distribution: auto = mean for number-token tokenizers (the course's), median for digit tokenizers (better on val).")


class BatchSettings(_Section):
    """Batch pricing (`pricer price`, app/batch/)."""

    batch_part_rows: int = Field(256, ge=1, description="`pricer price`: rows per part, the unit a job writes (prices, errors and a summary, each by temp-then-rename) and a rerun skips once done; smaller parts lose less to a kill, larger ones write fewer files.")
    batch_size: int = Field(64, ge=1, description="`pricer price`: items per engine call inside a worker (one PricingCore call, as one POST /v1/estimate/batch of that many items).")
    batch_inflight: int = Field(2, ge=1, description="`pricer price`: engine calls (of PRICER_BATCH_SIZE items) a worker keeps in flight at once, so that the engine is not idle while a call's retrieval and other ensemble members run; 1: one after another.")
    batch_member_timeout_s: float = Field(120.0, gt=0, description="`pricer price`: what PRICER_MEMBER_TIMEOUT_S is inside a job's workers (seconds a member may take per 16 items). The service's deadline is for interactive latency; in a job, chunks queue behind each other on purpose, and that deadline would leave the LLM out of answers for no reason but the job's own queue (on a 2-core CPU: 320 of 384 answers at 2 chunks of 64 in flight).")
    batch_actor_start_s: int = Field(900, ge=1, description="`pricer price`: seconds to wait for every pricing actor to start (load the engine, bundle and index) before the first part is handed out, so that the work spreads over every worker and node; a cluster without room for them fails after this long, saying so.")


class FrontierSettings(_Section):
    """The frontier estimator (any OpenAI-compatible chat API)."""

    frontier_base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible API base URL.")
    frontier_model: str = Field("gpt-4o-mini", description="Model name at that API.")
    frontier_api_key: SecretStr | None = Field(None, description="Key for that API.")
    frontier_comparables: int = Field(5, ge=0, le=20, description="Similar priced items from the comparables index in the frontier model's prompt (the course's RAG agent); 0: the plain question.")


class CurationSettings(_Section):
    """Curation (the course's rules; token budgets use the tokenizer below)."""

    curate_tokenizer: Path | None = Field(None, description="Tokenizer folder for curation budgets; unset: models/base/smollm2-135m, else the packaged SmolLM2 GGUF.")
    curate_min_tokens: int = Field(150, ge=1, description="Curation keeps items with more tokens than this (title + text).")
    curate_max_tokens: int = Field(160, ge=1, description="Curation cuts each item's text to this many tokens.")
    curate_min_chars: int = Field(300, ge=0, description="Curation keeps items whose description, features and details have more characters than this.")


SECTIONS = (ServiceSettings, StoreSettings, EngineSettings, BatchSettings, FrontierSettings, CurationSettings)


# Bases in reverse: pydantic lists the last base's fields first, so the service's come first (the
# order of docs/operations.md's settings table).
class Settings(CurationSettings, FrontierSettings, BatchSettings, EngineSettings, StoreSettings, ServiceSettings):
    """Every section in one object, built once from PRICER_* variables (and .env) and passed down."""

    @cached_property
    def base_dir(self) -> Path:
        return self.models_dir / "base"

    @cached_property
    def adapters_dir(self) -> Path:
        return self.models_dir / "adapters"

    @property
    def admission_target(self) -> float | None:
        """PRICER_ADMISSION_TARGET_S, or 0.8 x the members' deadline; None: admission by latency is off."""
        target = 0.8 * self.member_timeout_s if self.admission_target_s is None else self.admission_target_s
        return target or None

    @property
    def inflight_limit(self) -> int:
        """PRICER_MAX_INFLIGHT, or twice what the engine schedules at once: more only queues."""
        return self.max_inflight or 2 * self.max_num_seqs

    def base_model_path(self) -> Path:
        """`base_model` as a folder: a path if it is one, else a name under the store's base/."""
        candidate = Path(self.base_model).expanduser()
        if candidate.is_absolute() or candidate.exists() or "/" in self.base_model:
            return candidate
        return self.base_dir / self.base_model


def vector_cache_path() -> Path | None:
    """PRICER_VECTOR_CACHE, read once per value of the variable: it is asked on every embedding that
    misses the in-memory cache (a request's path), where building the settings (and reading .env)
    each time would be work for nothing."""
    import os

    return _vector_cache_path(os.environ.get("PRICER_VECTOR_CACHE"))


@lru_cache(maxsize=8)
def _vector_cache_path(_value: str | None) -> Path | None:
    return StoreSettings().vector_cache

