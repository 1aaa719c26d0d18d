"""`pricer fleet show` and `pricer fleet activate`: the desired state and the fleet view from the
store itself (PRICER_MODELS_DIR), no replica's HTTP needed. `activate` only checks that the version is
in the store and writes the next generation; each replica validates it and serves it, or keeps its own
version and reports why (GET /v1/fleet, `fleet show`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail

fleet_cli = typer.Typer(help="The desired state every replica follows, and the replicas sharing this store.", no_args_is_help=True)


def _show(view: dict) -> None:
    wanted = view["desired"]
    typer.echo(f"desired (generation {wanted['generation']}): adapter {wanted['adapter'] if wanted['adapter_chosen'] else '(not chosen)'},"
               f" ensemble {wanted['ensemble'] or '(not chosen)'}")
    for r in view["replicas"]:
        state = "converged" if r["converged"] else "LAGGING: " + "; ".join(lag.get("reason", "") for lag in r.get("lag") or []) or "not yet"
        typer.echo(f"  {r['replica']} {r['address']} adapter {r['adapter']} ensemble {r['ensemble']} "
                   f"generation {r['generation']} ({state}, seen {r['age_s']} s ago)")
    typer.echo(f"{len(view['replicas'])} replicas, {'all converged' if view['converged'] else 'not all converged'}")


@fleet_cli.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print the view as one JSON object.")] = False) -> None:
    """The desired state and every replica with a fresh heartbeat (what GET /v1/fleet answers)."""
    from app.config import Settings
    from app.fleet.view import fleet

    settings = Settings()
    view = fleet(settings.models_dir, settings.fleet_stale_s)
    typer.echo(json.dumps(view)) if as_json else _show(view)


@fleet_cli.command("activate")
def activate(
    kind: Annotated[str, typer.Argument(help="adapter or ensemble")],
    name: Annotated[str, typer.Argument(help="The adapter or ensemble name.")],
    version: Annotated[str, typer.Argument(help="The version folder's name.")],
    if_generation: Annotated[int | None, typer.Option(help="Write only if the desired state is still at this generation.")] = None,
    wait_s: Annotated[float, typer.Option(help="Wait this long for every replica to converge (0: do not wait).")] = 0.0,
) -> None:
    """Choose a version for every replica (also how to roll back): the next generation of the desired state."""
    from app.versions.folders import is_safe_name
    from app.config import Settings
    from app.versions import desired
    from app.fleet.view import wait_converged

    settings = Settings()
    if kind not in ("adapter", "ensemble"):
        raise typer.BadParameter("KIND is adapter or ensemble")
    root = settings.adapters_dir if kind == "adapter" else Path(settings.models_dir) / "ensembles"
    if not (is_safe_name(name) and is_safe_name(version)) or not (root / name / version / "manifest.json").is_file():
        fail(f"no {kind} version {name}@{version} in {root}")
    part = {"adapter": (name, version)} if kind == "adapter" else {"ensemble": (name, version)}
    try:
        state = desired.update(settings.models_dir, expect_generation=if_generation, by="cli", **part)
    except (desired.GenerationConflict, desired.StateError) as e:
        fail(e)
    typer.echo(f"desired state generation {state.generation}: {kind} {name}@{version}")
    if wait_s > 0:
        view = asyncio.run(wait_converged(settings.models_dir, settings.fleet_stale_s, state.generation, wait_s, 0.2))
        _show(view)
        if not view["converged"]:
            raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    cli.add_typer(fleet_cli, name="fleet")
