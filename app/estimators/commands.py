"""Commands of this area (filled in by the issue that builds it)."""

import typer


def register(cli: typer.Typer) -> None:
    return None
