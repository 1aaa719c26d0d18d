"""`pricer price INPUT --out DIR`: price a catalog file on Ray Data with the service's answer. Its
options are PriceOptions' fields (app.batch.run), declared there once."""

from __future__ import annotations

import json
import logging
import sys

import typer

from app.batch.run import PriceOptions
from app.cli_options import command, fail


def price(options: PriceOptions) -> None:
    """Price every row of a catalog file; every id lands once in prices/ or errors/ (docs/batch.md)."""
    from app.batch.inputs import InputError
    from app.batch.job import JobMismatch
    from app.batch.run import OutputMismatch, run
    from app.config import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    say = (lambda line: print(line, file=sys.stderr)) if options.as_json else print
    try:
        summary = run(options, Settings(), say=say)
    except (InputError, JobMismatch, OutputMismatch) as e:
        fail(e)
    except Exception as e:  # a worker's refusal arrives wrapped by Ray: show its own message
        cause = _root(e)
        if isinstance(cause, (JobMismatch, InputError)):
            fail(cause)
        refusal = _refusal_text(str(e))
        if refusal is not None:
            fail(refusal)
        raise
    if options.as_json:
        print(json.dumps(summary))


def register(cli: typer.Typer) -> None:
    cli.command("price")(command(PriceOptions, price))


def _root(error: BaseException) -> BaseException:
    """The innermost cause (Ray wraps an actor's exception in its own types)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        nxt = getattr(error, "cause", None) or error.__cause__
        if nxt is None or not isinstance(nxt, BaseException):
            break
        error = nxt
    return error


def _refusal_text(text: str) -> str | None:
    """A worker's JobMismatch from its __init__, which Ray's ActorDiedError keeps only as text."""
    marker = "JobMismatch: "
    at = text.rfind(marker)
    if at < 0:
        return None
    return " ".join(text[at + len(marker):].split("\n\n")[0].split())
