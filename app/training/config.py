"""Training arguments and the named presets.

One `TrainConfig` describes a run completely: each hyperparameter is declared once there (type,
bounds, default, help), `pricer train`'s options are generated from it, the manifest records it,
and `--preset` plus the same overrides reproduces it. Presets are TrainConfig instances: the
course's QLoRA recipe for Llama 3.1 8B on a GPU, and the measured values for SmolLM2-135M on a CPU
(see docs/training.md).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.cli_options import cli

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


class TrainConfig(BaseModel):
    """Every training hyperparameter, declared once: `pricer train`'s options are generated from
    these fields (app.training.commands) and each preset is an instance of this class."""

    model_config = ConfigDict(extra="forbid")

    data: list[Path] = Field(default_factory=list, description="Training items (JSONL); repeat for several files.")
    val: Path | None = Field(None, description="Validation items (JSONL) scored at every save.")
    val_items: int = Field(250, ge=0, description="How many validation items are scored at each save (0: none).")
    final_val_items: int | None = Field(None, ge=0, description="Validation items scored at the last save (default: val_items).")
    base: str = Field("smollm2-135m", description="Base model: a name under the store's base/, a folder, or a hub id.")
    store: Path | None = Field(None, description="Model store (default: PRICER_MODELS_DIR); versions go to <store>/adapters/<name>/.")
    name: str = Field("pricer-smollm2", description="Adapter name.")
    work_dir: Path | None = Field(None, description="Trainer checkpoints for resuming (default: <store>/../runs/<name>).")

    lora_r: int = Field(16, ge=1, description="LoRA rank.", json_schema_extra=cli("--r"))
    lora_alpha: float = Field(32, gt=0, description="LoRA alpha.", json_schema_extra=cli("--alpha"))
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.", json_schema_extra=cli("--dropout"))
    target_modules: list[str] = Field(
        default_factory=lambda: list(ALL_LINEAR), description="Target modules, comma-separated (e.g. q_proj,v_proj).",
        json_schema_extra=cli("--targets", parse="csv"),
    )
    qlora: bool = Field(False, description="Load the base in 4-bit nf4 (bitsandbytes), double quant, bf16 compute.")

    epochs: float = Field(1.0, gt=0, description="Epochs over the (oversampled) data.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run the epochs).")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.", json_schema_extra=cli("--lr"))
    lr_scheduler: str = Field("cosine", description="LR schedule (cosine, linear, constant_with_warmup, ...).", json_schema_extra=cli("--schedule"))
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Warmup as a fraction of the steps.", json_schema_extra=cli("--warmup"))
    batch_size: int = Field(8, ge=1, description="Examples per device step.", json_schema_extra=cli("--batch"))
    grad_accum: int = Field(2, ge=1, description="Gradient accumulation steps.")
    max_length: int = Field(256, ge=16, description="Most tokens per example; the description is cut so the price always fits.")
    optim: str = Field("adamw_torch", description="Optimizer (adamw_torch, paged_adamw_32bit, ...).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    save_steps: int = Field(100, ge=1, description="Save (and export an adapter version) every N steps.")
    save_total_limit: int = Field(2, ge=1, description="Trainer checkpoints kept in the work dir for resuming.")
    logging_steps: int = Field(5, ge=1, description="Log the training loss every N steps.")
    seed: int = Field(42, description="Random seed.")
    bf16: bool = Field(True, description="bf16 for the base where the machine computes it natively (a GPU, a CPU with avx512_bf16/amx_bf16, or PRICER_DTYPE=bfloat16), fp32 elsewhere; LoRA weights stay fp32.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass (less memory).")
    oversample: dict[str, int] = Field(
        default_factory=dict,
        description="ORIGIN_PREFIX=COPIES per epoch, e.g. course-test=3 (0 drops them; no prefix matched: 1); repeatable.",
        json_schema_extra=cli(parse="pairs"),
    )
    eval_batch_size: int = Field(16, ge=1, description="Validation items generated at once.")
    comparables: int = Field(
        0, ge=0, le=20,
        description="Retrieved neighbours (titles, prices) in each prompt, from the comparables index (never the item "
        "itself); serve the adapter with PRICER_PROMPT_COMPARABLES set to the same number.",
    )


PRESETS: dict[str, TrainConfig] = {
    # The course's QLoRA run (week 7): Llama 3.1 8B, 4-bit, attention-only LoRA, one epoch.
    "llama31-8b-course": TrainConfig(
        base="meta-llama/Llama-3.1-8B", name="pricer-llama31-8b", qlora=True,
        lora_r=32, lora_alpha=64, lora_dropout=0.1, target_modules=list(ATTENTION),
        learning_rate=1e-4, lr_scheduler="cosine", warmup_ratio=0.03, epochs=1, batch_size=4, grad_accum=1,
        max_length=182, optim="paged_adamw_32bit", save_steps=2000, val_items=250, gradient_checkpointing=True,
    ),
    # SmolLM2-135M on a 2-core CPU: measured in docs/training.md.
    # Only what differs from the defaults (base smollm2-135m, LoRA r 16 / alpha 32 on all linear layers).
    "smollm2-cpu": TrainConfig(
        learning_rate=5e-4, warmup_ratio=0.05,
        # Sized to the CPU time a shared 2-core machine gives (docs/training.md): 48 steps of 8.
        max_steps=48, batch_size=8, grad_accum=1, max_length=96,
        save_steps=16, val_items=0, final_val_items=100, eval_batch_size=25,
        # The Appliances set has another price prior (mean $56 against val's $216): left out.
        oversample={"lite-appliances": 0},
    ),
}


# The shipped adapter: the CPU preset, but two epochs of the course items, each prompt with the 5
# nearest training items' titles and prices (the comparables index; never the item itself), scored
# on all of val at the end. About 9 s a step on an idle 2-core machine, 512 steps (docs/training.md).
PRESETS["smollm2-cpu-rag"] = PRESETS["smollm2-cpu"].model_copy(update=dict(
    comparables=5, learning_rate=3e-4, epochs=2, max_steps=-1, max_length=192, save_steps=64, final_val_items=250,
    # the course items only: the lite-* sets have other price priors (Appliances: mean $56)
    oversample={"lite": 0},
))


def build_config(preset: str | None, **overrides) -> TrainConfig:
    """The preset (else the defaults), then every override that is not None, validated again."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
    start = PRESETS[preset] if preset is not None else TrainConfig()
    return TrainConfig(**(start.model_dump() | {k: v for k, v in overrides.items() if v is not None}))
