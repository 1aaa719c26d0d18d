"""`pricer train`: TRL SFTTrainer + peft LoRA (or QLoRA) on prompt/completion pairs, the loss on
the price only, every save exported as an adapter version, resumable after a kill."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

from app.config import Settings
from app.model.item_files import load_items
from app.model.spec import ServingSpec
from app.runtime.atomic import atomic_write_text
from app.training.config import TrainConfig
from app.training.data import build_dataset, data_hash, load_training_items

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
# Arguments that may change between a run and its resume (how long, how it is checked).
RESUMABLE_CHANGES = {"max_steps", "epochs", "val", "val_items", "final_val_items", "save_steps", "eval_batch_size", "save_total_limit"}


class TrainingError(RuntimeError):
    """A run that cannot start as asked; the message says why."""


def resolve_paths(config: TrainConfig, settings: Settings) -> tuple[Path, str, Path]:
    """(model store, base to load: a folder or a hub id, work dir for trainer checkpoints)."""
    store = Path(config.store) if config.store else settings.models_dir
    base_settings = settings.model_copy(update={"models_dir": store, "base_model": config.base})
    from app.store.base import PACKAGED, is_model_folder, prepare

    base_path = base_settings.base_model_path()
    if is_model_folder(base_path):
        base = str(base_path)
    elif config.base in PACKAGED:
        base = str(prepare(config.base, store / "base"))
    elif Path(config.base).exists():
        raise TrainingError(f"base {config.base!r} is a folder but holds no HF model (config.json + safetensors)")
    else:
        base = config.base  # a hub id (the GPU preset); from_pretrained finds it in the HF cache
    work_dir = Path(config.work_dir) if config.work_dir else store.resolve().parent / "runs" / config.name
    return store, base, work_dir


def base_fingerprint(base: str) -> str:
    from app.store.base import fingerprint, is_model_folder

    return fingerprint(Path(base)) if is_model_folder(Path(base)) else f"hub:{base}"


def check_resume(work_dir: Path, config: TrainConfig) -> bool:
    """True when the work dir holds a checkpoint of the same run to continue from."""
    run_file = work_dir / RUN_FILE
    checkpoints = list(work_dir.glob("checkpoint-*"))
    if not checkpoints:
        return False
    if run_file.is_file():
        before = json.loads(run_file.read_text())
        now = json.loads(config.model_dump_json())
        changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k) != now[k])
        if changed:
            raise TrainingError(f"{work_dir} holds checkpoints of a run with other settings ({', '.join(changed)}); "
                                f"use --fresh to start over or --work-dir for a separate run")
    return True


def use_bf16(config: TrainConfig, settings: Settings) -> bool:
    """bf16 where asked (--bf16, the default) and where the machine computes it: a GPU, a CPU with
    native bf16, or PRICER_DTYPE=bfloat16 (app.model.hardware). Elsewhere fp32: emulated bf16 is ~40x slower."""
    from app.model.hardware import compute_dtype

    return config.bf16 and compute_dtype(settings).dtype == "bfloat16"


def load_model(base: str, config: TrainConfig, bf16: bool | None = None):
    import torch
    from transformers import AutoModelForCausalLM

    bf16 = config.bf16 if bf16 is None else bf16
    kwargs: dict = {"dtype": torch.bfloat16 if bf16 else torch.float32}
    if config.qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=kwargs["dtype"])
        kwargs["device_map"] = {"": 0} if torch.cuda.is_available() else {"": "cpu"}
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if config.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    return model


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), bias="none", task_type="CAUSAL_LM")


def sft_config(config: TrainConfig, work_dir: Path, bf16: bool | None = None):
    import torch
    from trl import SFTConfig

    # warmup_steps below 1: a fraction of the steps
    return SFTConfig(
        output_dir=str(work_dir), num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_ratio,
        optim=config.optim, weight_decay=config.weight_decay, logging_steps=config.logging_steps,
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        seed=config.seed, data_seed=config.seed, bf16=config.bf16 if bf16 is None else bf16,
        use_cpu=not torch.cuda.is_available(), max_length=config.max_length, completion_only_loss=True, packing=False,
        train_sampling_strategy="group_by_length", gradient_checkpointing=config.gradient_checkpointing,
        report_to="none", dataloader_num_workers=0, dataset_num_proc=None)


def train(config: TrainConfig, settings: Settings | None = None, command: str | None = None, fresh: bool = False) -> list[Path]:
    """Run (or resume) training; returns the adapter versions it exported, oldest first."""
    trainer, exporter, resume = build_trainer(config, settings, command, fresh)
    trainer.train(resume_from_checkpoint=True if resume else None)
    return exporter.versions


def build_trainer(config: TrainConfig, settings: Settings | None = None, command: str | None = None, fresh: bool = False):
    """(SFTTrainer, its ExportCallback, whether it resumes a checkpoint), ready to `train()`."""
    import shutil

    from peft import get_peft_model
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from app.training.callbacks import ExportCallback, LossCurveCallback
    from app.training.export import export_version
    from app.training.validate import validate

    settings = settings or Settings()
    if not config.data:
        raise TrainingError("no training data: pass --data FILE.jsonl")
    store, base, work_dir = resolve_paths(config, settings)
    if fresh:
        shutil.rmtree(work_dir, ignore_errors=True)
    resume = check_resume(work_dir, config)
    work_dir.mkdir(parents=True, exist_ok=True)

    items = load_training_items(config.data)
    val_items = load_items(config.val) if config.val else []
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # examples and validation: asked and read as served, with the run's comparables
    spec = ServingSpec.build(settings, tokenizer, comparables=config.comparables)
    index_version = attach_index(spec, settings)
    dataset = build_dataset(items, spec, config.max_length, config.oversample)

    bf16 = use_bf16(config, settings)
    model = get_peft_model(load_model(base, config, bf16), lora_config(config))
    model.print_trainable_parameters()

    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    manifest_fields = dict(
        base_model=Path(base).name if Path(base).exists() else base,
        base_fingerprint=base_fingerprint(base),
        lora_rank=config.lora_r, lora_alpha=config.lora_alpha, target_modules=list(config.target_modules),
        qlora=config.qlora, data_hash=data_hash(config.data),
        prompt_hash=spec.prompt_hash, point_rule=spec.point_rule,
        training=json.loads(config.model_dump_json()) | {"train_items": len(items), "train_examples": len(dataset), "comparables_index": index_version},
        command=command,
    )

    def export(peft_model, step: int, final: bool) -> Path:
        n = config.final_val_items if (final and config.final_val_items is not None) else config.val_items
        subset = val_items[:n]

        def run_validation(folder: Path):
            if not subset:
                return None
            if config.qlora:  # a no-grad pass repacks 4-bit CPU weights and stops their gradients
                return validate_fresh(base, folder, spec, subset, str(config.val), config.eval_batch_size, bf16)
            return validate(peft_model, spec, subset, data=str(config.val), batch_size=config.eval_batch_size)

        return export_version(peft_model, store / "adapters", config.name, step, manifest_fields, run_validation)

    exporter = ExportCallback(export)
    trainer = SFTTrainer(model=model, args=sft_config(config, work_dir, bf16), train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[exporter, LossCurveCallback(work_dir)])
    atomic_write_text(work_dir / RUN_FILE, config.model_dump_json(indent=2))
    return trainer, exporter, resume


def attach_index(spec, settings: Settings) -> str | None:
    """Load the comparables index into a retrieval-augmented spec; its version (None: no comparables)."""
    if spec.comparables == 0:
        return None
    from app.index.service import ComparablesUnavailableError
    from app.index.service import attach_index as attach

    try:
        index = attach(spec, settings, required=True)
    except ComparablesUnavailableError as e:
        raise TrainingError(f"--comparables {spec.comparables} needs the comparables index: {e}") from e
    log.info("comparables from index %s (%d items)", index.version, len(index))
    return index.version


def validate_fresh(base: str, adapter_dir: Path, spec, items, data: str, batch_size: int, bf16: bool = True):
    """Validate an exported adapter on a freshly loaded base (bf16, or fp32 where the machine has no
    native bf16), as the service would serve it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from app.training.validate import validate

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if bf16 else torch.float32).to(device)
    model = PeftModel.from_pretrained(model, adapter_dir)
    try:
        return validate(model, spec, items, data=data, batch_size=batch_size)
    finally:
        del model
