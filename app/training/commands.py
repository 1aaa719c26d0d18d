"""`pricer train` and `pricer merge`. `train`'s options are generated from TrainConfig's fields
(app.training.config, by app.cli_options): a hyperparameter is declared once, with its type, bounds and help."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import fail, parameters, parse_values
from app.training.config import PRESETS, TrainConfig


def train_command(preset: str | None, fresh: bool, **values) -> None:
    """Fine-tune a LoRA/QLoRA adapter; every save becomes a version in the adapter store."""
    from pydantic import ValidationError

    from app.config import Settings
    from app.training.config import build_config
    from app.training.run import TrainingError, train

    try:
        config = build_config(preset, **parse_values(TrainConfig, values))
        for path in [*config.data, *([config.val] if config.val else [])]:
            if not Path(path).is_file():
                raise TrainingError(f"data file not found: {path}")
        versions = train(config, Settings(), fresh=fresh)
    except (ValueError, ValidationError, TrainingError, FileNotFoundError) as e:
        fail(e)
    for version in versions:
        typer.echo(str(version))


class TrainRun(BaseModel):
    """`pricer train`'s options beside TrainConfig's."""

    preset: str | None = Field(None, description=f"{' or '.join(sorted(PRESETS))}; the options below override it.")
    fresh: bool = Field(False, description="Delete the work dir's checkpoints and start over.")


train_command.__signature__ = inspect.Signature([*parameters(TrainRun), *parameters(TrainConfig, unset=True)])


def register(cli: typer.Typer) -> None:
    cli.command("train")(train_command)

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
            fail(e)
        typer.echo(str(path))
