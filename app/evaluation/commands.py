"""`pricer evaluate` and `pricer leaderboard`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail as _fail
from app.model.item_files import ItemsFileError


def _load(path: Path, limit: int | None = None):
    from app.model.item_files import load_items

    try:
        return load_items(path, limit=limit)
    except (FileNotFoundError, ItemsFileError) as e:
        _fail(str(e))


def _options(adapter: str | None = None, url: str | None = None, seed: int = 42):
    from app.config import Settings
    from app.estimators.base import EstimatorOptions

    return EstimatorOptions(settings=Settings(), seed=seed, adapter=adapter, url=url)


_CLIENT_ERRORS = (ValueError, FileNotFoundError, NotImplementedError)


def register(cli: typer.Typer) -> None:
    @cli.command("evaluate")
    def evaluate_command(
        data: Annotated[Path, typer.Option(help="Items JSONL to score on.")],
        estimator: Annotated[str, typer.Option(help="A registry name or a folder that `pricer fit` wrote.")],
        train: Annotated[Path | None, typer.Option(help="Items JSONL to fit on (estimators that learn).")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N items.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of scores.")] = False,
        chart: Annotated[Path | None, typer.Option(help="Write the truth-vs-estimate scatter PNG here.")] = None,
        adapter: Annotated[str | None, typer.Option(help="llm: an adapter folder or name[@version].")] = None,
        url: Annotated[str | None, typer.Option(help="http: a running Pricer service.")] = None,
        report: Annotated[Path | None, typer.Option(help="Write the per-item report (JSONL) here.")] = None,
        seed: Annotated[int, typer.Option(help="Seed for estimators that draw at random.")] = 42,
        titles_only: Annotated[bool, typer.Option("--titles-only", help="Score the items sent as their titles alone "
                                                  "(no description, details or category), as many clients send them.")] = False,
        train_origin: Annotated[str | None, typer.Option(help="Fit only on --train items whose `origin` starts with this "
                                                         "(e.g. `course` for the course's own items).")] = None,
    ) -> None:
        """Score one estimator on items exactly as the course's Tester does."""
        from app.evaluation.charts import scatter_chart
        from app.evaluation.report import write_report
        from app.evaluation.runner import run_estimator

        items = _load(data, limit)
        if titles_only:
            items = [item.title_only() for item in items]
        train_items = _load(train) if train else None
        if train_items is not None and train_origin:
            from app.model.items import from_origin

            train_items = from_origin(train_items, train_origin)
            if not train_items:
                _fail(f"no item of {train} has an origin starting with {train_origin!r}")
        try:
            run = run_estimator(estimator, items, _options(adapter, url, seed), train_items)
        except _CLIENT_ERRORS as e:
            _fail(str(e))
        except RuntimeError as e:  # an API or engine that failed: not the caller's mistake
            _fail(str(e), code=1)
        s = run.score
        typer.echo(run.summary() + f" (n={s.n}, green/orange/red {s.green}/{s.orange}/{s.red})")
        if report:
            write_report(report, items, run.guesses, run.intervals)
            typer.echo(f"per-item report: {report}")
        if chart:
            scatter_chart(chart, [i.price for i in items], run.guesses, s, estimator)
            typer.echo(f"chart: {chart}")
        if as_json:
            typer.echo(json.dumps(run.to_dict() | ({"titles_only": True} if titles_only else {})))

    @cli.command("leaderboard")
    def leaderboard_command(
        data: Annotated[Path, typer.Option(help="Items JSONL to score on.")],
        estimator: Annotated[list[str], typer.Option(help="Registry names or saved folders; repeat the option.")],
        train: Annotated[Path | None, typer.Option(help="Items JSONL to fit on.")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N items.")] = None,
        chart: Annotated[Path | None, typer.Option(help="Write the leaderboard bar chart PNG here.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of all scores.")] = False,
        adapter: Annotated[str | None, typer.Option(help="llm: an adapter folder or name[@version].")] = None,
        url: Annotated[str | None, typer.Option(help="http: a running Pricer service.")] = None,
        seed: Annotated[int, typer.Option(help="Seed for estimators that draw at random.")] = 42,
    ) -> None:
        """Score several estimators on the same items in one run; print a markdown table."""
        from app.evaluation.charts import leaderboard_chart
        from app.evaluation.runner import markdown_table, run_estimator

        items = _load(data, limit)
        train_items = _load(train) if train else None
        options = _options(adapter, url, seed)
        runs = []
        for name in estimator:
            try:
                run = run_estimator(name, items, options, train_items)
            except _CLIENT_ERRORS as e:
                _fail(f"{name}: {e}")
            except RuntimeError as e:
                _fail(f"{name}: {e}", code=1)
            typer.echo(run.summary(), err=True)
            runs.append(run)
        typer.echo(f"\nScored on {len(items)} items of {data}" + (f", fitted on {len(train_items)} of {train}" if train_items else ""))
        typer.echo(markdown_table(runs))
        if chart:
            leaderboard_chart(chart, [(r.estimator, r.score) for r in runs])
            typer.echo(f"chart: {chart}")
        if as_json:
            typer.echo(json.dumps({"n": len(items), "results": [r.to_dict() for r in runs]}))
