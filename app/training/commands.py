"""`pricer train` and `pricer merge`. `train`'s options are generated from TrainConfig's fields
(app.training.config): a hyperparameter is declared once, with its type, bounds and help."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

import typer
from pydantic.fields import FieldInfo

from app.training.config import PRESETS, TrainConfig


def _option_type(field: FieldInfo, parse: str | None):
    """The command-line type of a field: lists repeat, `csv` is one string, `pairs` repeat KEY=N."""
    if parse == "csv":
        return str
    if parse == "pairs":
        return list[str]
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return annotation


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter (a typer Option defaulting to None: "not given") per TrainConfig field."""
    parameters = []
    for name, field in TrainConfig.model_fields.items():
        extra = field.json_schema_extra or {}
        flag = "--" + name.replace("_", "-")
        kind = _option_type(field, extra.get("cli_parse"))
        flags = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag, *extra.get("cli_flags", [])]
        option = typer.Option(None, *flags, help=field.description, show_default=False)
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind | None))
    return parameters


def parse_values(values: dict) -> dict:
    """Command-line values -> TrainConfig overrides (csv and KEY=N pairs parsed; unset left out)."""
    out = {}
    for name, value in values.items():
        if value is None or value == []:
            continue
        parse = (TrainConfig.model_fields[name].json_schema_extra or {}).get("cli_parse")
        if parse == "csv":
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif parse == "pairs":
            value = dict(_pair(v) for v in value)
        out[name] = value
    return out


def _pair(value: str) -> tuple[str, int]:
    key, sep, number = value.rpartition("=")
    if not sep or not key or not number.isdigit():
        raise typer.BadParameter(f"expected KEY=COUNT (e.g. course-test=2), got {value!r}")
    return key, int(number)


def train_command(preset: str | None, fresh: bool, **values) -> None:
    """Fine-tune a LoRA/QLoRA adapter; every save becomes a version in the adapter store."""
    from pydantic import ValidationError

    from app.config import Settings
    from app.training.config import build_config
    from app.training.run import TrainingError, train

    try:
        config = build_config(preset, **parse_values(values))
        for path in [*config.data, *([config.val] if config.val else [])]:
            if not Path(path).is_file():
                raise TrainingError(f"data file not found: {path}")
        versions = train(config, Settings(), fresh=fresh)
    except (ValueError, ValidationError, TrainingError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    for version in versions:
        typer.echo(str(version))


def _train_entry(**kwargs) -> None:
    train_command(**kwargs)


_train_entry.__doc__ = train_command.__doc__
_train_entry.__signature__ = inspect.Signature([
    inspect.Parameter("preset", inspect.Parameter.KEYWORD_ONLY, annotation=str | None, default=typer.Option(
        None, help=f"{' or '.join(sorted(PRESETS))}; the options below override it.")),
    inspect.Parameter("fresh", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, help="Delete the work dir's checkpoints and start over.")),
    *config_parameters(),
])


def register(cli: typer.Typer) -> None:
    cli.command("train")(_train_entry)

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
