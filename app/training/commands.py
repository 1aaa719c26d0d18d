"""`pricer train` and `pricer merge`."""

from __future__ import annotations

from pathlib import Path

import typer


def _oversample(values: list[str] | None) -> dict[str, int] | None:
    if not values:
        return None
    out = {}
    for value in values:
        prefix, sep, copies = value.rpartition("=")
        if not sep or not prefix or not copies.isdigit():
            raise typer.BadParameter(f"expected ORIGIN_PREFIX=COPIES (e.g. course-test=2), got {value!r}")
        out[prefix] = int(copies)
    return out


def register(cli: typer.Typer) -> None:
    @cli.command("train")
    def train_command(
        data: list[Path] = typer.Option(None, "--data", help="Training items (JSONL); repeat for several files."),
        val: Path = typer.Option(None, "--val", help="Validation items (JSONL), scored at each save."),
        preset: str = typer.Option(None, help="llama31-8b-course or smollm2-cpu; options below override it."),
        base: str = typer.Option(None, help="Base model: a name under the store's base/, a folder, or a hub id."),
        store: Path = typer.Option(None, help="Model store (default PRICER_MODELS_DIR); versions go to <store>/adapters/<name>/."),
        name: str = typer.Option(None, help="Adapter name."),
        work_dir: Path = typer.Option(None, help="Trainer checkpoints for resuming (default <store>/../runs/<name>)."),
        fresh: bool = typer.Option(False, help="Delete the work dir's checkpoints and start over."),
        lora_r: int = typer.Option(None, "--r", help="LoRA rank."),
        lora_alpha: float = typer.Option(None, "--alpha", help="LoRA alpha."),
        lora_dropout: float = typer.Option(None, "--dropout", help="LoRA dropout."),
        targets: str = typer.Option(None, help="Comma-separated target modules (e.g. q_proj,v_proj)."),
        qlora: bool = typer.Option(None, "--qlora/--no-qlora", help="4-bit nf4 base (bitsandbytes), double quant, bf16 compute."),
        epochs: float = typer.Option(None, help="Epochs over the (oversampled) data."),
        max_steps: int = typer.Option(None, help="Stop after this many optimizer steps (overrides epochs)."),
        lr: float = typer.Option(None, help="Peak learning rate."),
        schedule: str = typer.Option(None, help="LR schedule (cosine, linear, constant_with_warmup, ...)."),
        warmup: float = typer.Option(None, help="Warmup as a fraction of the steps."),
        batch: int = typer.Option(None, help="Examples per device step."),
        grad_accum: int = typer.Option(None, help="Gradient accumulation steps."),
        max_length: int = typer.Option(None, help="Most tokens per example (the description is cut, never the price)."),
        optim: str = typer.Option(None, help="Optimizer (adamw_torch, paged_adamw_32bit, ...)."),
        save_steps: int = typer.Option(None, help="Save (and export a version) every N steps."),
        seed: int = typer.Option(None, help="Random seed."),
        val_items: int = typer.Option(None, help="Validation items scored at each save."),
        final_val_items: int = typer.Option(None, help="Validation items scored at the last save."),
        oversample: list[str] = typer.Option(None, help="ORIGIN_PREFIX=COPIES, e.g. course-test=3 (0 drops them); repeatable."),
    ) -> None:
        """Fine-tune a LoRA/QLoRA adapter; every save becomes a version in the adapter store."""
        from pydantic import ValidationError

        from app.config import Settings
        from app.training.config import build_config
        from app.training.run import TrainingError, train

        try:
            config = build_config(
                preset, data=data or None, val=val, base=base, store=store, name=name, work_dir=work_dir,
                lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                target_modules=[t.strip() for t in targets.split(",") if t.strip()] if targets else None,
                qlora=qlora, epochs=epochs, max_steps=max_steps, learning_rate=lr, lr_scheduler=schedule,
                warmup_ratio=warmup, batch_size=batch, grad_accum=grad_accum, max_length=max_length, optim=optim,
                save_steps=save_steps, seed=seed, val_items=val_items, final_val_items=final_val_items,
                oversample=_oversample(oversample),
            )
            for path in [*config.data, *([config.val] if config.val else [])]:
                if not Path(path).is_file():
                    raise TrainingError(f"data file not found: {path}")
            versions = train(config, Settings(), fresh=fresh)
        except (ValueError, ValidationError, TrainingError, FileNotFoundError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        for version in versions:
            typer.echo(str(version))

    @cli.command("merge")
    def merge_command(
        adapter: Path = typer.Argument(..., help="An adapter version folder (models/adapters/<name>/<version>)."),
        name: str = typer.Option(None, help="Name of the merged model under the store's base/ (default <adapter>-<version>-merged)."),
        base: str = typer.Option(None, help="Base to merge into (default: the one the manifest names, checked by fingerprint)."),
        store: Path = typer.Option(None, help="Model store (default PRICER_MODELS_DIR)."),
        force: bool = typer.Option(False, help="Replace an existing merged model of that name."),
        dtype: str = typer.Option("bfloat16", help="Weights dtype of the merged model (bfloat16, float16, float32)."),
    ) -> None:
        """Merge an adapter into its base (dequantized if QLoRA) as an HF model vLLM can serve."""
        from app.config import Settings
        from app.training.merge import MergeError, merge

        try:
            if dtype not in ("bfloat16", "float16", "float32"):
                raise MergeError(f"unknown dtype {dtype!r}: bfloat16, float16 or float32")
            path = merge(adapter, Settings(), name=name, base=base, store=store, force=force, dtype=dtype)
        except (MergeError, FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(str(path))
