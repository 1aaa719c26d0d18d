"""`pricer curate` and `pricer data chart`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail

data_cli = typer.Typer(help="Look at items files.", no_args_is_help=True)


def register(cli: typer.Typer) -> None:
    cli.add_typer(data_cli, name="data")

    @cli.command("curate")
    def curate_command(
        raw: Annotated[list[Path] | None, typer.Argument(help="Raw metadata JSONL files (meta_<Category>.jsonl[.gz]).")] = None,
        out: Annotated[Path, typer.Option(help="Folder for train.jsonl, val.jsonl, test.jsonl and summary.json.")] = Path("data"),
        hub_category: Annotated[list[str] | None, typer.Option(help="Stream this category from the hub (repeatable).")] = None,
        hub_limit: Annotated[int | None, typer.Option(min=1, help="Most rows to read per hub category.")] = None,
        category: Annotated[str | None, typer.Option(help="Category for local rows (default: from the file name).")] = None,
        tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer folder (default: settings).")] = None,
        val: Annotated[float, typer.Option(help="Validation items: a fraction (< 1) or a count.")] = 0.05,
        test: Annotated[float, typer.Option(help="Test items: a fraction (< 1) or a count.")] = 0.05,
        slot_cap: Annotated[int, typer.Option(min=1, help="Most items per whole-dollar price slot.")] = 1200,
        keep_all_from: Annotated[float, typer.Option(help="Slots from this price up keep every item.")] = 240.0,
        size: Annotated[int | None, typer.Option(min=1, help="Most items after balancing.")] = None,
        seed: Annotated[int, typer.Option(help="Seed for sampling and splits.")] = 42,
    ) -> None:
        """Curate raw Amazon metadata into priced items with the course's rules, balanced and split."""
        from app.config import Settings
        from app.data.pipeline import curate

        if not raw and not hub_category:
            fail("give raw metadata files, or --hub-category NAME")
        settings = Settings()
        if tokenizer:
            settings = settings.model_copy(update={"curate_tokenizer": tokenizer})
        try:
            summary = curate(
                raw or [], out, settings=settings, category=category, hub_categories=hub_category or [],
                hub_limit=hub_limit, val=val, test=test, slot_cap=slot_cap, keep_all_from=keep_all_from,
                size=size, seed=seed,
            )
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            fail(e)
        typer.echo(json.dumps(summary, indent=2))

    @data_cli.command("chart")
    def chart_command(
        data: Annotated[Path, typer.Option(help="Items JSONL.")],
        out: Annotated[Path, typer.Option(help="PNG to write.")],
        tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer folder (default: settings).")] = None,
    ) -> None:
        """Price histogram, category counts and token-count distribution of an items file."""
        from app.config import Settings
        from app.data.charts import data_chart
        from app.data.curation import default_tokenizer_source, load_tokenizer
        from app.model.item_files import ItemsFileError, load_items

        try:
            items = load_items(data)
            if not items:
                fail(f"{data} holds no items")
            tok = load_tokenizer(tokenizer or default_tokenizer_source(Settings()))
        except (FileNotFoundError, ItemsFileError) as e:
            fail(e)
        counts = [len(tok.encode(item.text, add_special_tokens=False)) for item in items]
        data_chart(out, items, counts, title=str(data))
        typer.echo(f"chart: {out} ({len(items)} items)")
