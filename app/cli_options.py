"""Command-line options generated from a pydantic model: each option is declared once, as a field
with its type, default, bounds and help (DESIGN.md: the command line generated from dataclasses).
TrainConfig (`pricer train`), PriceOptions (`pricer price`) and every `pricer bench` command
declare theirs this way; what a field cannot say goes in `json_schema_extra=cli(...)`."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import NoReturn

import typer
from annotated_types import Ge, Le
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def fail(message: object, code: int = 2) -> NoReturn:
    """End a command: `error: <message>` on stderr, exit status `code` (2: what it was given is wrong)."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def cli(*flags: str, name: str | None = None, parse: str | None = None, argument: bool = False, **option) -> dict:
    """Field metadata for the generated command line. `flags`: more names beside --field-name (the
    short ones the docs use); `name`: the flag instead of --field-name (a bool with its own name is
    a switch, `--json`; one without gets --x/--no-x); `parse`: how a value is written (`csv`: a,b,c;
    `pairs`: repeated KEY=N); `argument`: positional; `option`: passed to typer (envvar, exists...)."""
    meta = {"cli_flags": list(flags), "cli_name": name, "cli_parse": parse, "cli_argument": argument, "cli_option": option}
    return {key: value for key, value in meta.items() if value}


def parameters(model: type[BaseModel], unset: bool = False) -> list[inspect.Parameter]:
    """One keyword parameter per field. `unset`: every option defaults to None ("not given": the
    model's defaults, or a preset's, apply later; bounds are checked when the model is built);
    otherwise the field's default is the option's (none: required) and its ge/le are min/max."""
    return [_parameter(name, field, unset) for name, field in model.model_fields.items()]


def _parameter(name: str, field: FieldInfo, unset: bool) -> inspect.Parameter:
    meta, parse = field.json_schema_extra or {}, (field.json_schema_extra or {}).get("cli_parse")
    kind = str if parse == "csv" else list[str] if parse == "pairs" else _unwrap_optional(field.annotation)
    default = ... if field.is_required() else field.get_default(call_default_factory=True)
    if parse and default is not ...:  # as the command line writes it: the inverse of parse_values
        default = ",".join(default) if parse == "csv" else [f"{k}={v}" for k, v in default.items()]
    flag = meta.get("cli_name") or "--" + name.replace("_", "-")
    flags = [f"{flag}/--no-{flag[2:]}" if kind is bool and not meta.get("cli_name") else flag, *meta.get("cli_flags", [])]
    if meta.get("cli_argument"):
        info = typer.Argument(default, help=field.description, **meta.get("cli_option", {}))
    elif unset:
        info, kind = typer.Option(None, *flags, help=field.description, show_default=False), kind | None
    else:
        bounds = {"min": b.ge for b in field.metadata if isinstance(b, Ge)} | {"max": b.le for b in field.metadata if isinstance(b, Le)}
        info = typer.Option(default, *flags, help=field.description, **bounds, **meta.get("cli_option", {}))
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind)


def _unwrap_optional(annotation):
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def parse_values(model: type[BaseModel], values: dict) -> dict:
    """Command-line values -> the model's fields (csv and KEY=N pairs parsed; unset left out)."""
    out = {}
    for name, value in values.items():
        if value is None or value == []:
            continue
        parse = (model.model_fields[name].json_schema_extra or {}).get("cli_parse")
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


def command(model: type[BaseModel], run: Callable[[BaseModel], object]) -> Callable:
    """A typer command whose options are `model`'s fields; `run` gets the model built from them,
    and its docstring is the command's help."""

    def entry(**values):
        return run(model(**parse_values(model, values)))

    entry.__doc__, entry.__signature__ = run.__doc__, inspect.Signature(parameters(model))
    return entry
