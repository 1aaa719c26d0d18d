"""Options generated from a model's fields: defaults, bounds, switches, arguments, environment
variables, and the "not given" mode TrainConfig's overrides use."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from app.cli_options import cli, command, parameters, parse_values


class Example(BaseModel):
    path: Path = Field(description="A positional path.", json_schema_extra=cli(argument=True))
    count: int = Field(3, ge=1, le=5, description="Bounded.", json_schema_extra=cli("-c"))
    key: str | None = Field(None, description="From the environment.", json_schema_extra=cli(envvar="EXAMPLE_KEY"))
    raw: bool = Field(True, description="--raw/--no-raw.")
    as_json: bool = Field(False, description="A switch.", json_schema_extra=cli(name="--json"))
    names: list[str] = Field(default_factory=list, description="a,b", json_schema_extra=cli(parse="csv"))


def test_defaults_bounds_switches_and_the_environment():
    app = typer.Typer()
    seen: list[Example] = []

    def example(options: Example) -> None:
        """Example."""
        seen.append(options)

    app.command("example")(command(Example, example))
    app.command("other")(lambda: None)
    runner = CliRunner()
    ok = runner.invoke(app, ["example", "in.jsonl", "-c", "5", "--no-raw", "--json"], env={"EXAMPLE_KEY": "k"})
    assert ok.exit_code == 0, ok.output
    assert seen[-1] == Example(path=Path("in.jsonl"), count=5, key="k", raw=False, as_json=True)
    assert runner.invoke(app, ["example", "in.jsonl"]).exit_code == 0
    assert seen[-1] == Example(path=Path("in.jsonl"))
    assert runner.invoke(app, ["example", "in.jsonl", "--count", "6"]).exit_code == 2  # le=5
    assert runner.invoke(app, ["example"]).exit_code == 2  # the argument is required
    assert runner.invoke(app, ["example", "in.jsonl", "--no-json"]).exit_code == 2  # a switch has no --no-


def test_unset_mode_leaves_every_option_not_given():
    options = {p.name: p.default for p in parameters(Example, unset=True)}
    assert all(o.default is None for name, o in options.items() if name != "path")
    assert parse_values(Example, {"count": None, "names": "a, b,", "raw": False}) == {"names": ["a", "b"], "raw": False}
