"""`pricer model prepare|list|info`: the base-model store, and how this machine computes it.
(`pricer model needed`, which reads the active bundle, is added to the group from app.pricing.commands.)"""

from __future__ import annotations

import typer

from app.cli_options import fail

from app.store.base import PACKAGED, ModelStoreError, fingerprint, is_model_folder, prepare


def register(cli: typer.Typer) -> None:
    model_cli = typer.Typer(help="The model store: prepare packaged base models.", no_args_is_help=True)

    @model_cli.command("prepare")
    def prepare_command(
        name: str = typer.Argument("smollm2-135m", help=f"One of: {', '.join(sorted(PACKAGED))}"),
        force: bool = typer.Option(False, help="Rebuild even if it is there."),
    ) -> None:
        """Turn a packaged GGUF model into models/base/<name>/ (safetensors), once."""
        from app.config import Settings

        settings = Settings()
        if name in PACKAGED and (force or not is_model_folder(settings.base_dir / name)):
            typer.echo(f"{name}: preparing {settings.base_dir / name} (once; a minute or more for the larger bases)", err=True)
        try:
            path = prepare(name, settings.base_dir, force=force)
        except ModelStoreError as e:
            fail(e)
        typer.echo(f"{name}: {path} ({fingerprint(path)})")

    @model_cli.command("list")
    def list_command() -> None:
        """The base models in the store."""
        from app.config import Settings

        base_dir = Settings().base_dir
        for path in sorted(base_dir.glob("*")) if base_dir.exists() else []:
            if is_model_folder(path):
                typer.echo(f"{path.name}\t{path}")

    @model_cli.command("info")
    def info_command(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
        """The served base, and the device, compute dtype and CPU kind it runs on here (PRICER_DTYPE overrides)."""
        import json

        from app.config import Settings
        from app.model.hardware import compute_block

        settings = Settings()
        block = {"base_model": settings.base_model, "base_path": str(settings.base_model_path())} | compute_block(settings)
        if as_json:
            typer.echo(json.dumps(block))
            return
        cpu = block["cpu"]
        typer.echo(f"base model   {block['base_model']} ({block['base_path']})")
        typer.echo(f"device       {block['device']}")
        typer.echo(f"dtype        {block['dtype']} ({block['dtype_reason']})")
        typer.echo(f"cpu          {cpu['model']}: {cpu['isa']}, native bf16 {'yes' if cpu['native_bf16'] else 'no'}, {cpu['cores']} cores")

    cli.add_typer(model_cli, name="model")


def model_group(cli: typer.Typer) -> typer.Typer:
    """The `pricer model` group registered on `cli`, for a command from a higher layer to join it."""
    for group in cli.registered_groups:
        if group.name == "model" and group.typer_instance is not None:
            return group.typer_instance
    raise LookupError("app.store.commands.register(cli) first: no `model` group")
