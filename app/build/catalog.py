"""A marketplace's own priced catalog as training items for `pricer build`.

The file is read exactly as `pricer price` reads a catalog (app.batch.inputs: JSONL, CSV or Parquet,
the same whole-file checks, raised before anything is written), plus a price column. Each row is
validated with the API's item fields and becomes an Item the way the service builds one from a
request (its text: app.pricing.text.item_text at the served ceiling; the item:
app.pricing.core.member_item), so what a model is fitted on is what it is later asked about. A row
that cannot become an item goes to `errors` with its id and the reason, never dropped:
len(items) + len(errors) == rows.

Prices accepted: a number (int, float, Decimal; not a bool), or a string of digits with an optional
leading sign and "$", commas only as thousands separators (groups of three) and "." before the
cents: "1299", "1299.00", "$1,299.00", " $12.5 ". Anything else is refused, not guessed: "1,29" and
"1.299,00" (a decimal comma?), "12-15", "€12", "12 USD", "NaN", "". In CSV an empty cell and the
null markers pyarrow reads as no value ("NaN", "NA", "null", ...) are a missing price.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from app.batch.inputs import FIELDS, Checker, InputError, chunks, file_hash
from app.model.item_files import write_items
from app.model.items import Item
from app.model.spec import text_ceiling
from app.pricing.core import member_item
from app.pricing.fields import ItemFields, describe_validation
from app.pricing.text import NOTHING_TO_PRICE, has_words, item_text
from app.runtime.atomic import atomic_write_text

MIN_SIDE = 10  # the fewest items either side of the held-out split may have
_PRICE = re.compile(r"[-+]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


class CatalogError(InputError):
    """A priced catalog that cannot be used at all because of its price column (app.batch.inputs'
    InputError covers the rest: format, ids, duplicates)."""


@dataclass
class PricedCatalog:
    ids: list  # of the good rows, aligned with `items`
    items: list[Item]
    errors: list[dict]  # {"id", "reason", "row": the row's other cells as read}
    rows: int  # every row of the file: len(items) + len(errors)
    price_column: str = "price"
    source_sha256: str = ""


class _RowsChecker(Checker):
    """The batch job's whole-file checks, also handing on each chunk's raw rows (for the price and
    the errors file): `chunks` yields what `take` returns."""

    def take(self, rows: list[dict], columns: set[str]) -> tuple:
        ids, items, bad = super().take(rows, columns)
        return ids, items, bad, rows


def read_priced_catalog(path, *, price_column: str = "price", id_column: str = "id", settings=None) -> PricedCatalog:
    """Every row of the catalog at `path` as an Item or an error (see the module docstring).
    Whole-file problems raise InputError (CatalogError for the price column), both ValueErrors.
    `settings` (default: the environment's) gives the served text ceiling."""
    path = Path(path)
    if price_column == id_column or price_column in FIELDS:
        raise CatalogError(f"{path}: the price column {price_column!r} cannot also be the id column or an item field "
                           f"({', '.join(FIELDS)})")
    if settings is None:
        from app.config import Settings

        settings = Settings()
    ceiling = text_ceiling(settings)
    checker = _RowsChecker(path, id_column)
    catalog = PricedCatalog([], [], [], 0, price_column)
    for ids, texts, bad, rows in chunks(path, id_column, checker=checker):
        for row_id, text, unread, row in zip(ids, texts, bad, rows, strict=True):
            item, reason = _item(text, unread, row.get(price_column), price_column, ceiling)
            if item is not None:
                catalog.ids.append(row_id)
                catalog.items.append(item)
            else:
                cells = {k: v for k, v in row.items() if k not in (id_column, "_bad")}
                catalog.errors.append({"id": row_id, "reason": reason, "row": _plain(cells)})
    if price_column not in checker.columns:
        raise CatalogError(f"{path}: no price column {price_column!r} (columns: {', '.join(sorted(checker.columns))}); "
                           "name it with the price column option")
    catalog.rows = checker.rows
    if len(catalog.items) + len(catalog.errors) != catalog.rows:  # every row is an item or an error
        raise RuntimeError(f"{path}: {len(catalog.items)} items + {len(catalog.errors)} errors != {catalog.rows} rows")
    catalog.source_sha256 = file_hash(path)
    return catalog


def catalog_price(value) -> float:
    """A row's price in dollars, or ValueError saying why not (accepted forms: the module docstring)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("missing")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if isinstance(value, str):
        if not _PRICE.fullmatch(value.strip()):
            raise ValueError(f"not a number of dollars ({shown}); write it like 1299.00 or $1,299.00")
        number = value.strip().replace("$", "").replace(",", "")
    elif isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"not a number ({type(value).__name__} {shown})")
    else:
        number = value
    try:
        price = float(number)
    except (ValueError, OverflowError):  # a signalling NaN Decimal, an int past float's range
        price = math.nan
    if not math.isfinite(price):
        raise ValueError(f"not a finite number ({shown})")
    if price <= 0:
        raise ValueError(f"must be more than 0, got {shown}")
    return price


def _item(text: str | None, unread: str | None, raw_price, column: str, ceiling: int) -> tuple[Item | None, str | None]:
    """(the row's Item, None) or (None, every reason it has none, "; "-joined)."""
    reasons, body, price = [], None, None
    try:
        price = catalog_price(raw_price)
    except ValueError as e:
        reasons.append(f"{column}: {e}")
    if unread:  # a CSV or Parquet cell that is not JSON
        reasons.append(unread)
    else:
        try:
            body = ItemFields.model_validate(json.loads(text))
        except ValidationError as e:  # the API's own reasons, as a 422 gives them
            reasons.append(describe_validation(e.errors())[0])
    if body is not None:
        text = item_text(body, ceiling)
        if not has_words(text):
            reasons.append(NOTHING_TO_PRICE)
    if reasons:
        return None, "; ".join(reasons)
    served = member_item(body, text)
    return Item.model_validate({**served.model_dump(), "price": price}), None


def _plain(value):
    """A raw cell as strict JSON holds it (NaN and inf, Decimal, dates and bytes become text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def split_heldout(ids, items, *, fraction: float, seed) -> tuple[list[Item], list[Item]]:
    """(train, held-out) items: an item is held out when the hash of (seed, its id) falls below
    `fraction`, so its side depends on nothing else: appending or removing other rows never moves it,
    and a larger fraction only moves items from train to held out."""
    if len(ids) != len(items):
        raise ValueError(f"{len(ids)} ids for {len(items)} items")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise ValueError(f"the held-out fraction must be in (0, 0.5], got {fraction!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{len(ids) - len(set(ids))} repeated ids: each id must be unique to be split by")
    train, heldout = [], []
    for item_id, item in zip(ids, items, strict=True):
        (heldout if _unit(seed, item_id) < fraction else train).append(item)
    if len(heldout) < MIN_SIDE or len(train) < MIN_SIDE:
        raise ValueError(f"a held-out fraction of {fraction} (seed {seed!r}) splits {len(items)} items into {len(train)} "
                         f"train and {len(heldout)} held out; each side needs at least {MIN_SIDE}")
    return train, heldout


def _unit(seed, item_id) -> float:
    """A number in [0, 1) fixed by (seed, id); 1 and "1" differ."""
    digest = hashlib.sha256(json.dumps([seed, item_id]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def write_catalog_outputs(catalog: PricedCatalog, train, heldout, out_dir) -> dict:
    """out_dir/train.jsonl and heldout.jsonl (items files), errors.jsonl (one bad row a line) and
    facts.json, each written atomically, facts last. Returns the facts."""
    if len(train) + len(heldout) != len(catalog.items):
        raise ValueError(f"{len(train)} train + {len(heldout)} held-out items are not the catalog's {len(catalog.items)}")
    out = Path(out_dir)
    write_items(out / "train.jsonl", train)
    write_items(out / "heldout.jsonl", heldout)
    lines = (json.dumps(error, ensure_ascii=False, allow_nan=False) + "\n" for error in catalog.errors)
    atomic_write_text(out / "errors.jsonl", "".join(lines))
    facts = {"rows": catalog.rows, "items": len(catalog.items), "errors": len(catalog.errors), "train": len(train),
             "heldout": len(heldout), "price_column": catalog.price_column, "source_sha256": catalog.source_sha256}
    atomic_write_text(out / "facts.json", json.dumps(facts, indent=2) + "\n")
    return facts
