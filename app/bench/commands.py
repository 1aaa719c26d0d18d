"""`pricer bench NAME`: every benchmark, one group; `pricer bench NAME` is app/bench/NAME.py, whose
options are declared once as a pydantic model `Options` (the command line generated from it by
app.cli_options) and which runs as `bench(options)`. `pricer bench --url URL ...` with no NAME is
`pricer bench load`, the documented interface from before the group; the old `pricer bench-NAME`
commands and `pricer index bench` stay as hidden aliases for a release."""

from __future__ import annotations

import importlib

import typer
from typer.core import TyperGroup

from app.cli_options import command

BENCHES = ("load", "cpu", "compiled", "fleet", "swaps", "overload", "decoding", "catalog", "index", "comparables", "serving")
DEFAULT = "load"
OLD_NAMES = {f"bench-{name}": name for name in BENCHES if name not in ("load", "compiled", "index", "comparables", "serving")} | {"index bench": "index"}


class LoadByDefault(TyperGroup):
    """A group whose arguments not starting with a benchmark's name (or --help) are `load`'s."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [DEFAULT, *args]
        return super().parse_args(ctx, args)


def register(cli: typer.Typer) -> None:
    from app.index.commands import index_cli

    group = typer.Typer(cls=LoadByDefault, help="Every benchmark: `pricer bench NAME --help`. Options and no NAME: `pricer bench load`.")
    entries = {}
    for name in BENCHES:
        module = importlib.import_module(f"app.bench.{name}")
        entries[name] = group.command(name)(command(module.Options, module.bench))
    for old, name in OLD_NAMES.items():
        parent, _, leaf = old.rpartition(" ")
        app = index_cli if parent == "index" else cli
        app.command(leaf, hidden=True, deprecated=f"Use `pricer bench {name}`.")(entries[name])
    cli.add_typer(group, name="bench")
