"""`pricer price INPUT --out DIR`: price a catalog file on Ray Data with the service's answer."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command("price")
    def price(
        input: Path = typer.Argument(..., help="Catalog file: .jsonl, .csv or .parquet rows with title, description, features, details, category and an id."),
        out: Path = typer.Option(..., "--out", help="Output folder (prices/, errors/, parts/, job.json); a rerun continues it."),
        id_column: str = typer.Option("id", "--id-column", help="The column holding each row's unique id."),
        format: str = typer.Option("parquet", "--format", help="Output format: parquet or jsonl."),
        comparables: int = typer.Option(0, "--comparables", min=0, max=20, help="Similar priced items (0-20) per row, as the API's `comparables`."),
        ray_address: str | None = typer.Option(None, "--ray-address", help="Join this Ray cluster (e.g. auto, or HOST:6379); unset: a local Ray started in-process."),
        workers: int | None = typer.Option(None, "--workers", min=1, help="Pricing actors; default: one per GPU, else one per node."),
        batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Items per engine call; default PRICER_BATCH_SIZE."),
        part_rows: int | None = typer.Option(None, "--part-rows", min=1, help="Rows per part (the resume unit); default PRICER_BATCH_PART_ROWS."),
        cpus_per_worker: float | None = typer.Option(None, "--cpus-per-worker", min=0.1, help="CPUs each actor reserves; default: the node's CPUs (1 with a GPU)."),
        gpus_per_worker: float | None = typer.Option(None, "--gpus-per-worker", min=0, help="GPUs each actor reserves; default: 1 on a GPU cluster, else 0."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object last: rows, priced, errors, seconds, items_per_s, member_seconds, versions."),
    ) -> None:
        """Price every row of a catalog file; every id lands once in prices/ or errors/ (docs/batch.md)."""
        from app.batch.inputs import InputError
        from app.batch.job import JobMismatch
        from app.batch.run import OutputMismatch, PriceOptions, run
        from app.config import Settings

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        options = PriceOptions(input=input, out=out, id_column=id_column, format=format, comparables=comparables,
                               ray_address=ray_address, workers=workers, batch_size=batch_size, part_rows=part_rows,
                               cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)
        say = (lambda line: print(line, file=sys.stderr)) if as_json else print
        try:
            summary = run(options, Settings(), say=say)
        except (InputError, JobMismatch, OutputMismatch) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except Exception as e:  # a worker's refusal arrives wrapped by Ray: show its own message
            cause = _root(e)
            if isinstance(cause, (JobMismatch, InputError)):
                typer.echo(f"error: {cause}", err=True)
                raise typer.Exit(2) from None
            refusal = _refusal_text(str(e))
            if refusal is not None:
                typer.echo(f"error: {refusal}", err=True)
                raise typer.Exit(2) from None
            raise
        if as_json:
            print(json.dumps(summary))


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
