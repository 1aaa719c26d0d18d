"""`pricer build RECIPE`: priced data to a served, measured bundle, one command.

The recipe becomes a DVC pipeline in builds/<recipe>/ (app.build.pipeline) and `dvc repro` runs what
is out of date; the built bundle is then measured against the active one on the same held-out items
and published and promoted only as `--promote` says (app.build.promote). `pricer build-step` is what
the pipeline's stages run (hidden)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail

Rule = typer.Option(help="if-better: only when measurably better on the same held-out items (the rule: "
                         "app/build/promote.py); always; never (build and measure only).")


def build_command(
    recipe: Annotated[Path, typer.Argument(help="A recipe file (recipes/*.yaml).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override one choice, KEY.SUB=VALUE (e.g. stack.seed=7; KEY=null removes it: members.llm-head=null); repeatable.")] = None,
    workspace: Annotated[Path | None, typer.Option(help="The build's DVC workspace (default: builds/<recipe name>).")] = None,
    promote: Annotated[str, Rule] = "if-better",
    force: Annotated[bool, typer.Option("--force", help="Rerun every stage, cached or not.")] = False,
    rerun: Annotated[list[str] | None, typer.Option(help="Rerun this stage (e.g. stack, member-knowledge) and what follows it, "
                                                         "cached or not: code is no DVC dependency (docs/build.md); repeatable.")] = None,
    models_dir: Annotated[Path | None, typer.Option(help="The model store (default: PRICER_MODELS_DIR).")] = None,
    sweep: Annotated[list[str] | None, typer.Option(help="KEY=V1,V2,...: build every combination in turn, score each, "
                                                          "promote none (rows in <workspace>/sweep.jsonl); repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line: bundle, digest, promotion.")] = False,
) -> None:
    """Build the recipe's bundle (cached by DVC: only what a change touches reruns), measure it against the
    active bundle, and publish and promote it when the rule says so."""
    from app.build.promote import RULES as PROMOTE_RULES
    from app.build.promotion import run_promotion
    from app.config import Settings

    if promote not in PROMOTE_RULES:
        fail(f"--promote takes one of {', '.join(PROMOTE_RULES)}, got {promote!r}")
    settings = Settings()
    if models_dir is not None:
        settings = settings.model_copy(update={"models_dir": models_dir})
    ws = workspace or Path("builds") / recipe.stem
    if sweep:
        _sweep(recipe, set_ or [], sweep, ws, settings, force, rerun or [])
        return
    chosen = _run(recipe, set_ or [], ws, settings, force, rerun or [])
    outcome = run_promotion(ws, chosen, recipe, settings, promote)
    for line in outcome.lines:
        typer.echo(line)
    if as_json:
        typer.echo(json.dumps(outcome.summary))


def _run(recipe: Path, overrides: list[str], ws: Path, settings, force: bool, rerun: list[str]):
    """Validate the recipe, render the workspace, `dvc repro` what is out of date; the recipe used."""
    from app.build import pipeline
    from app.build import recipe as recipes

    try:
        chosen = recipes.resolved(recipes.load(recipe, overrides), Path.cwd())
        recipes.check_files(chosen)
    except recipes.RecipeError as e:
        fail(e)
    try:
        names = list(pipeline.stages(chosen)["stages"])
        unknown = sorted(set(rerun) - set(names))
        if unknown:
            fail(f"--rerun {', '.join(unknown)}: no such stage in this recipe; its stages: {', '.join(names)}")
        pipeline.prepare(chosen, ws)
        todo = pipeline.stale(ws)
        if not todo and not force and not rerun:
            typer.echo(f"build {ws}: nothing changed since the last build; every stage is up to date (dvc status)")
        else:
            what = ('every stage (--force)' if force else 'changed: ' + ', '.join(todo) + ' (and what depends on them)' if todo
                    else 'nothing changed')
            typer.echo(f"build {ws}: {what}" + (f"; rerun: {', '.join(rerun)} (and what follows)" if rerun and not force else ""))
            pipeline.repro(ws, settings, force=force, rerun=() if force else tuple(rerun))
    except pipeline.PipelineError as e:
        fail(e, code=1)
    return chosen


def _sweep(recipe: Path, overrides: list[str], sweeps: list[str], ws: Path, settings, force: bool, rerun: list[str]) -> None:
    from app.build.recipe import RecipeError
    from app.build.stacking import built_bundle
    from app.build.sweep import append, grid, row
    from app.ensemble.bundle import content_digest

    try:
        combos = grid(sweeps)
    except RecipeError as e:
        fail(e)
    for number, combo in enumerate(combos, 1):
        typer.echo(f"sweep {number}/{len(combos)}: {' '.join(combo)}")
        _run(recipe, overrides + combo, ws, settings, force, rerun)
        got = row(ws, overrides + combo, content_digest(built_bundle(ws)))
        s = got["stack"]
        typer.echo(f"sweep {number}/{len(combos)}: {got['train_items']} training items: ${s['mean_error']:.2f} "
                   f"[{s['mean_error_ci'][0]:.2f}, {s['mean_error_ci'][1]:.2f}], hits {s['hit_rate'] * 100:.1f}%, "
                   f"coverage {s.get('coverage', 0) * 100:.1f}%  -> {append(ws, got)}")


def step_command(
    kind: Annotated[str, typer.Argument(help="data, index, adapter, member, stack or evaluate.")],
    name: Annotated[str | None, typer.Argument(help="adapter, member: the member's name in the recipe.")] = None,
) -> None:
    """One stage of a build, run by DVC in the build's workspace (the current directory)."""
    from app.build import stacking, steps
    from app.config import Settings

    ws, settings = Path.cwd(), Settings()
    try:
        if kind == "data":
            facts = steps.data_step(ws)
            typer.echo(f"data: {facts['train']} training items, {facts['heldout']} held out, {facts['errors']} rows refused")
        elif kind == "index":
            typer.echo(f"index: {steps.index_step(ws, settings)}")
        elif kind == "adapter" and name:
            from app.build.adapter_step import adapter_step

            typer.echo(f"adapter {name}: trained {adapter_step(ws, name, settings)}")
        elif kind == "member" and name:
            typer.echo(f"member {name}: answered {steps.member_step(ws, name, settings)} held-out items")
        elif kind == "stack":
            typer.echo(f"stack: {stacking.stack_step(ws, settings)}")
        elif kind == "evaluate":
            stack = stacking.evaluate_step(ws)["stack"]
            typer.echo(f"evaluate: the stack out of fold ${stack['mean_error']:.2f}, hits {stack['hit_rate'] * 100:.1f}%, "
                       f"coverage {stack.get('coverage', float('nan')) * 100:.1f}%")
        else:
            fail(f"unknown step {kind!r}{' (it needs a member NAME)' if kind in ('member', 'adapter') else ''}")
    except (steps.StepError, ValueError, FileNotFoundError) as e:
        fail(e)


def curve_command(
    sweep_file: Annotated[Path, typer.Argument(help="A sweep's rows (<workspace>/sweep.jsonl).")],
    out: Annotated[Path, typer.Option(help="The chart (PNG).")] = Path("learning-curve.png"),
    title: Annotated[str, typer.Option(help="The chart's title.")] = "Learning curve",
) -> None:
    """The learning curve of a sweep over training sizes: a chart and a markdown table, with a fitted power
    law carried to 20,000 and 200,000 items (an extrapolation, labelled as one)."""
    from app.build.curve import chart, fit, load_rows, markdown

    try:
        rows = load_rows(sweep_file)
        law = fit(rows)
    except (OSError, ValueError, KeyError) as e:
        fail(e)
    chart(rows, law, out, title)
    typer.echo(markdown(rows, law))
    typer.echo(f"chart: {out}")


def register(cli: typer.Typer) -> None:
    cli.command("build")(build_command)
    cli.command("build-curve")(curve_command)
    cli.command("build-step", hidden=True)(step_command)
