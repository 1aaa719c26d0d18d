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
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override one choice, KEY.SUB=VALUE (e.g. stack.seed=7); repeatable.")] = None,
    workspace: Annotated[Path | None, typer.Option(help="The build's DVC workspace (default: builds/<recipe name>).")] = None,
    promote: Annotated[str, Rule] = "if-better",
    force: Annotated[bool, typer.Option("--force", help="Rerun every stage, cached or not.")] = False,
    models_dir: Annotated[Path | None, typer.Option(help="The model store (default: PRICER_MODELS_DIR).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line: bundle, digest, promotion.")] = False,
) -> None:
    """Build the recipe's bundle (cached by DVC: only what a change touches reruns), measure it against the
    active bundle, and publish and promote it when the rule says so."""
    from app.build import pipeline
    from app.build import recipe as recipes
    from app.build.promotion import PROMOTE_RULES, run_promotion
    from app.config import Settings

    if promote not in PROMOTE_RULES:
        fail(f"--promote takes one of {', '.join(PROMOTE_RULES)}, got {promote!r}")
    settings = Settings()
    if models_dir is not None:
        settings = settings.model_copy(update={"models_dir": models_dir})
    try:
        chosen = recipes.resolved(recipes.load(recipe, set_ or []), Path.cwd())
    except recipes.RecipeError as e:
        fail(e)
    ws = workspace or Path("builds") / recipe.stem
    try:
        pipeline.prepare(chosen, ws)
        todo = pipeline.stale(ws)
        if not todo and not force:
            typer.echo(f"build {ws}: nothing changed since the last build; every stage is up to date (dvc status)")
        else:
            typer.echo(f"build {ws}: {'every stage (--force)' if force else 'changed: ' + ', '.join(todo) + ' (and what depends on them)'}")
            pipeline.repro(ws, settings, force=force)
    except pipeline.PipelineError as e:
        fail(e, code=1)
    outcome = run_promotion(ws, chosen, recipe, settings, promote)
    for line in outcome.lines:
        typer.echo(line)
    if as_json:
        typer.echo(json.dumps(outcome.summary))


def step_command(
    kind: Annotated[str, typer.Argument(help="data, index, member, stack or evaluate.")],
    name: Annotated[str | None, typer.Argument(help="member: its name in the recipe.")] = None,
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
        elif kind == "member" and name:
            typer.echo(f"member {name}: answered {steps.member_step(ws, name, settings)} held-out items")
        elif kind == "stack":
            typer.echo(f"stack: {stacking.stack_step(ws, settings)}")
        elif kind == "evaluate":
            stack = stacking.evaluate_step(ws)["stack"]
            typer.echo(f"evaluate: the stack out of fold ${stack['mean_error']:.2f}, hits {stack['hit_rate'] * 100:.1f}%, "
                       f"coverage {stack.get('coverage', float('nan')) * 100:.1f}%")
        else:
            fail(f"unknown step {kind!r}{' (member needs a NAME)' if kind == 'member' else ''}")
    except (steps.StepError, ValueError, FileNotFoundError) as e:
        fail(e)


def register(cli: typer.Typer) -> None:
    cli.command("build")(build_command)
    cli.command("build-step", hidden=True)(step_command)
