"""`pricer bench comparables`: would a person accept the comparables shown? For items with a known
price (val.jsonl), the k most similar indexed items, and per similarity floor: the share of items
that still show at least one, how many they show, and the share of those shown priced within 2x of
the item's own price (issue 30's measure). The floor to set is PRICER_COMPARABLES_MIN_SIMILARITY."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from app.cli_options import fail


class Options(BaseModel):
    data: Path = Field(description="Priced items JSONL (e.g. ../shared/data/val.jsonl).")
    index: Path = Field(Path("models/index"), description="An index version, or a root (its newest version).")
    k: int = Field(5, ge=1, le=20, description="Comparables asked per item.")
    floors: list[float] = Field([0.0, 0.3, 0.4, 0.5, 0.6, 0.7], description="Similarity floors to measure; repeat.")
    titles_only: bool = Field(False, description="Query with the items' titles alone (what many clients send).")


def within(price: float, truth: float, factor: float = 2.0) -> bool:
    return truth / factor <= price <= truth * factor


def table(found: list[list], truths: list[float], floors: list[float]) -> list[dict]:
    """One row per floor: items with any shown, comparables shown per item, shown within 2x."""
    rows = []
    for floor in floors:
        shown = [[c for c in item if c.similarity >= floor] for item in found]
        flat = [(c, truth) for item, truth in zip(shown, truths, strict=True) for c in item]
        rows.append({"floor": floor, "items_with_any": round(sum(bool(s) for s in shown) / len(shown), 3),
                     "shown_per_item": round(len(flat) / len(shown), 2),
                     "within_2x": round(sum(within(c.price, t) for c, t in flat) / len(flat), 3) if flat else None})
    return rows


def bench(o: Options) -> None:
    """Heavy (embeds every item): run it alone."""
    from app.index.index import Index
    from app.index.manifest import IndexFolderError
    from app.model.item_files import ItemsFileError, load_items

    try:
        items = load_items(o.data)
        index = Index.load(o.index)
    except (FileNotFoundError, ItemsFileError, IndexFolderError, ValueError) as e:
        fail(e)
    if o.titles_only:
        items = [item.title_only() for item in items]
    found = index.search([item.text for item in items], o.k, cache=False)  # the text a request is searched with
    rows = table(found, [item.price for item in items], sorted(o.floors))
    for row in rows:
        typer.echo(f"floor {row['floor']:.2f}: {row['items_with_any']:.0%} of items show any, "
                   f"{row['shown_per_item']:.1f} each, {row['within_2x'] or 0:.0%} of those within 2x", err=True)
    typer.echo(json.dumps({"n": len(items), "k": o.k, "index": index.version, "titles_only": o.titles_only, "floors": rows}))
