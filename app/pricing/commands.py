"""`pricer model needed`: the prepared bases the default answer needs (app.pricing.bases). It joins the
`pricer model` group (app.store.commands) from here, the layer that knows which bundle a replica serves."""

from __future__ import annotations

import typer

from app.cli_options import fail
from app.store.commands import model_group


def register(cli: typer.Typer) -> None:
    @model_group(cli).command("needed")
    def needed_command(
        missing: bool = typer.Option(False, "--missing", help="Only the bases not prepared in the store yet."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object: the bundle read and each base's path, "
                                     "whether it is prepared, whether a package ships it, and what needs it."),
    ) -> None:
        """The base models the default answer needs, one per line; `make serve` prepares what --missing lists.

        The served base (PRICER_BASE_MODEL), then the base each member of the active bundle reads
        (recorded in its estimator.json; a knowledge member's is PRICER_KNOWLEDGE_BASE)."""
        import json

        from app.config import Settings
        from app.pricing.bases import NeededError, needed_bases

        settings = Settings()
        try:
            label, bases = needed_bases(settings)
        except (NeededError, OSError) as e:
            fail(f"{e} (the store {settings.models_dir}; PRICER_MODELS_DIR, PRICER_ENSEMBLE_DIR)")
        if missing:
            bases = [base for base in bases if not base.prepared]
        if as_json:
            typer.echo(json.dumps({"bundle": label, "estimator": settings.estimator, "missing_only": missing,
                                   "bases": [base.as_dict() for base in bases]}))
            return
        for base in bases:
            typer.echo(base.name)
