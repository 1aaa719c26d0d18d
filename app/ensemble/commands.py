"""`pricer ensemble fit`: fit members on the training file(s), stack them on the val file's
out-of-fold answers, calibrate a conformal interval, write a versioned bundle."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail

ensemble_cli = typer.Typer(help="The stacked ensemble: fit and inspect bundles.", no_args_is_help=True)


def _line(name: str, s: dict) -> str:
    low, high = s["mean_error_ci"]
    cov = f" coverage {s['coverage'] * 100:.1f}%" if "coverage" in s else ""
    return (f"{name:<40} ${s['mean_error']:8.2f} [{low:7.2f}, {high:7.2f}]  RMSLE {s['rmsle']:.3f}  "
            f"hits {s['hit_rate'] * 100:5.1f}%{cov}")


@ensemble_cli.command("fit")
def fit_command(
    val: Annotated[Path, typer.Option(help="Stacking rows (val.jsonl): members never train on them.")],
    train: Annotated[list[Path] | None, typer.Option(help="Training file(s) for members fitted here; repeatable.")] = None,
    member: Annotated[list[str] | None, typer.Option(help="NAME (fit it on --train) or NAME=DIR (a `pricer fit` folder); repeatable.")] = None,
    member_report: Annotated[list[str] | None, typer.Option(help="NAME=FILE: precomputed answers on --val (`pricer evaluate --report`).")] = None,
    member_ref: Annotated[list[str] | None, typer.Option(help="NAME=PATH: a report member's folder under the model store (its manifest is hashed).")] = None,
    name: Annotated[str, typer.Option(help="Ensemble name: models/ensembles/<name>/<version>/.")] = "pricer-ensemble",
    models_dir: Annotated[Path | None, typer.Option(help="The model store (default: PRICER_MODELS_DIR).")] = None,
    level: Annotated[float, typer.Option(min=0.5, max=0.99, help="Nominal interval level.")] = 0.8,
    folds: Annotated[int, typer.Option(min=2, help="K for the out-of-fold fitting.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the folds and the members.")] = 42,
    reports_out: Annotated[Path | None, typer.Option(help="Also write each member's answers on --val as DIR/<member>.jsonl (usable as --member-report).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the cross-validated scores.")] = False,
) -> None:
    """Fit the week-8 stack out-of-fold and write a versioned bundle (no pickle)."""
    from app.config import Settings
    from app.ensemble.assemble import assemble, file_facts
    from app.ensemble.bundle import BundleError, external_fingerprint
    from app.ensemble.external import FRONTIER_MEMBER, content_row, endpoint_row
    from app.ensemble.members import MemberError, member_answers, parse_sources
    from app.estimators.base import EstimatorOptions
    from app.model.item_files import ItemsFileError, load_items

    settings = Settings()
    store = models_dir or settings.models_dir
    try:
        sources = parse_sources(member or [], member_report or [], member_ref or [])
        stacking = load_items(val)
        train_items = [i for path in (train or []) for i in load_items(path)]
    except (MemberError, FileNotFoundError, ItemsFileError) as e:
        fail(e)
    options = EstimatorOptions(settings=settings, seed=seed)
    workdir = Path(tempfile.mkdtemp(prefix="pricer-ensemble-"))
    try:
        answers, rows = {}, []
        for source in sources:
            try:
                got = member_answers(source, train_items, stacking, options, workdir)
            except (MemberError, ValueError, NotImplementedError, FileNotFoundError) as e:
                fail(f"member {source.name!r}: {e}")
            answers[source.name] = got.prices
            row = {"name": source.name, **got.info}
            if source.report is not None and source.name == FRONTIER_MEMBER:
                row = endpoint_row(row | {"kind": "external"}, settings)  # served where an endpoint is configured
            elif source.report is not None:
                row["kind"] = "external"
                if source.ref:
                    folder = store / source.ref if not Path(source.ref).is_absolute() else Path(source.ref)
                    try:
                        row["file"], row["sha256"] = external_fingerprint(folder)
                    except BundleError as e:
                        fail(f"member {source.name!r}: {e}")
                    row["ref"] = str(folder.resolve().relative_to(Path(store).resolve()))
                else:
                    typer.secho(f"warning: member {source.name!r} has no --member-ref: the bundle cannot check it",
                                fg="yellow", err=True)
                    row.update(file=None, sha256=None, ref=None)
            elif source.estimator:
                row["estimator"] = source.estimator
            try:  # knn: found by content at serving time, its index (titles, prices) never copied in
                row, saved_folder = content_row(row, got.saved, list(train or []))
            except BundleError as e:
                fail(e)
            rows.append((row, saved_folder))
        if reports_out:
            from app.evaluation.report import write_report

            for member_name, prices in answers.items():
                write_report(reports_out / f"{member_name}.jsonl", stacking, prices)
        try:
            dest, table = assemble(store / "ensembles" / name, answers, rows, stacking, name=name, level=level,
                                   folds=folds, seed=seed, val=file_facts(val, len(stacking)),
                                   train=[file_facts(p, len(load_items(p))) for p in (train or [])])
        except BundleError as e:
            fail(e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    typer.echo(f"Scored on {len(stacking)} items of {val}; stacks cross-validated ({folds}-fold, nested), "
               f"interval at {level * 100:.0f}%:")
    for member_name, s in table["members"].items():
        typer.echo(_line(f"member {member_name}", s))
    for key, s in table["stacks"].items():
        typer.echo(_line(f"stack {key}", s))
    typer.echo(f"bundle: {dest}")
    if as_json:
        typer.echo(json.dumps({"bundle": str(dest), **table}))


@ensemble_cli.command("show")
def show_command(bundle: Annotated[Path, typer.Argument(help="A bundle folder.")],
                 models_dir: Annotated[Path | None, typer.Option(help="Check external members in this store.")] = None) -> None:
    """Validate a bundle (members, hashes, stack) and print its manifest's summary, with its promotion
    record (`pricer build`: measured against the active bundle, promoted or not and why) when it has one."""
    from app.ensemble.bundle import Bundle, BundleError

    try:
        loaded = Bundle.load(bundle, models_dir)
    except BundleError as e:
        fail(e)
    summary = {"bundle": loaded.label, "members": list(loaded.ensemble.members),
               "subsets": len(loaded.ensemble.subsets), "level": loaded.ensemble.level,
               "cross_validated": loaded.manifest.get("cross_validated", {}).get("stacks")}
    if "promotion" in loaded.manifest:
        summary["promotion"] = loaded.manifest["promotion"]
    typer.echo(json.dumps(summary, indent=2))


def register(cli: typer.Typer) -> None:
    cli.add_typer(ensemble_cli, name="ensemble")
