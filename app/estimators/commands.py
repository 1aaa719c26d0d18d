"""`pricer fit`: fit an estimator on items and save it to a folder that `evaluate --estimator DIR` loads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail


def register(cli: typer.Typer) -> None:
    @cli.command("fit")
    def fit_command(
        estimator: Annotated[str, typer.Option(help="A registry name: random, constant, features-lr, details-gbm, bow-ridge, embed-gbm, embed-rf, llm-head, knowledge.")],
        data: Annotated[Path, typer.Option(help="Items JSONL to fit on.")],
        out: Annotated[Path, typer.Option(help="Folder to save the fitted estimator into (replaced if present).")],
        seed: Annotated[int, typer.Option(help="Seed for estimators that draw at random.")] = 42,
        origin: Annotated[str | None, typer.Option(help="Fit only on items whose `origin` starts with this "
                                                   "(e.g. `course` for the course's own items).")] = None,
    ) -> None:
        """Fit an estimator and save it (estimator.json plus skops/JSON files; no pickle)."""
        from app.config import Settings
        from app.estimators.base import EstimatorOptions, create
        from app.model.item_files import ItemsFileError, load_items
        from app.model.items import from_origin

        try:
            items = from_origin(load_items(data), origin)
            if not items:
                raise ValueError(f"no item of {data} has an origin starting with {origin!r}")
            model = create(estimator, EstimatorOptions(settings=Settings(), seed=seed))
            started = time.perf_counter()
            model.fit(items)
            model.save(out)
        except (FileNotFoundError, ItemsFileError, ValueError, NotImplementedError) as e:
            fail(e)
        typer.echo(json.dumps({"estimator": estimator, "items": len(items), "out": str(out),
                               "fit_seconds": round(time.perf_counter() - started, 3)}))
