"""A priced catalog becomes the service's items or errors with reasons; the held-out split is seeded
and stable per id; the outputs are items files the project's loader reads back."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.batch.inputs import InputError
from app.build.catalog import (CatalogError, catalog_price, read_priced_catalog, split_heldout,
                               write_catalog_outputs)
from app.config import Settings
from app.model.item_files import load_items
from app.model.spec import text_ceiling
from app.pricing.core import member_item
from app.pricing.fields import ItemFields
from app.pricing.text import NOTHING_TO_PRICE, item_text
from tests.factories import make_items

ALL = {"jsonl", "csv", "parquet"}
LONG_TITLE = "Mega deluxe stand mixer " * 400  # 9,600 characters: past the served text ceiling

# (id, fields, price as the file holds it, the price expected, the formats that hold this row)
GOOD = [
    (1, {"title": "Acme cordless drill", "description": "Brushless motor, two batteries.", "features": ["2 speeds"],
         "details": {"Brand": "Acme"}, "category": "Tools"}, 89.5, 89.5, ALL),
    (2, {"title": "Espresso machine", "description": "15 bar pump, milk frother."}, "$1,299.00", 1299.0, {"jsonl", "csv"}),
    (3, {"title": "USB cable", "description": "Braided, 2 m."}, 12, 12.0, ALL),
    (4, {"title": "", "description": "Desk lamp with a dimmer."}, " 35.5 ", 35.5, {"jsonl", "csv"}),
    (5, {"title": LONG_TITLE, "description": "Bowl of 5 quarts."}, 249.99, 249.99, ALL),
]
# (id, fields, price, what the reason must say, formats)
BAD = [
    (10, {"title": "Toaster"}, None, "price: missing", ALL),
    (11, {"title": "Kettle"}, "abc", "price: not a number of dollars ('abc')", {"jsonl", "csv"}),
    (12, {"title": "Blender"}, -3, "price: must be more than 0, got", ALL),
    (13, {"title": "Fan"}, 0, "price: must be more than 0, got", ALL),
    (14, {"title": "Heater"}, math.nan, "price: not a finite number (nan)", {"jsonl", "parquet"}),
    (15, {"title": "", "description": ""}, 10.0, "send a non-empty `title` or `description`", ALL),
    (16, {"title": "!!! ---", "description": "..."}, 10.0, NOTHING_TO_PRICE, ALL),
    (17, {"title": "Mixer"}, "1,29", "price: not a number of dollars ('1,29')", {"jsonl", "csv"}),
    (18, {"title": "", "description": ""}, "abc", "or $1,299.00; send a non-empty `title`", {"jsonl", "csv"}),
    (19, {"title": 5}, 10.0, "title: Input should be a valid string", {"jsonl"}),
    (20, {"title": "Vacuum"}, math.inf, "price: not a finite number (inf)", {"jsonl", "parquet"}),
]


def _write(tmp_path, fmt: str, rows: list[dict], name: str = "catalog"):
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in rows))
    elif fmt == "csv":
        names = ["id", "title", "description", "features", "details", "category", "price"]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, names)
            writer.writeheader()
            for r in rows:
                cells = {k: json.dumps(v) if k in ("features", "details") and not isinstance(v, str) else v
                         for k, v in r.items() if v is not None}
                writer.writerow({**cells, "price": "NaN" if r.get("price") != r.get("price") else r.get("price")})
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _catalog(tmp_path, fmt: str):
    rows = [{"id": i, **fields, "price": price} for i, fields, price, _, formats in GOOD + BAD if fmt in formats]
    if fmt == "parquet":  # one type per column: the price is a float there
        for row in rows:
            row["price"] = None if row["price"] is None else float(row["price"])
    return _write(tmp_path, fmt, rows), len(rows)


@pytest.mark.parametrize("fmt", sorted(ALL))
def test_good_rows_become_the_services_items_with_their_price(tmp_path, fmt):
    settings = Settings()
    path, _ = _catalog(tmp_path, fmt)
    catalog = read_priced_catalog(path, settings=settings)
    expected = {i: (fields, price) for i, fields, _, price, formats in GOOD if fmt in formats}
    assert catalog.ids == sorted(expected)
    for item_id, item in zip(catalog.ids, catalog.items, strict=True):
        fields, price = expected[item_id]
        assert item.price == price
        body = ItemFields.model_validate(fields)
        text = item_text(body, text_ceiling(settings))
        assert item == member_item(body, text).model_copy(update={"price": price})  # as the service builds it
    drill = catalog.items[0]
    assert drill.title == "Acme cordless drill" and drill.category == "Tools"
    assert drill.text == "Acme cordless drill\nBrushless motor, two batteries. 2 speeds Brand Acme"
    assert json.loads(drill.details) == {"Brand": "Acme"}
    mixer = catalog.items[catalog.ids.index(5)]  # no title limit in the pricing layer: cut as served
    title, _, rest = mixer.text.partition("\n")
    assert title.startswith("Mega deluxe stand mixer") and len(title) <= text_ceiling(settings) < len(LONG_TITLE)
    assert rest == "Bowl of 5 quarts." and mixer.title == title
    if fmt != "parquet":
        lamp = catalog.items[catalog.ids.index(4)]  # no title: the description's first line stands in, as served
        assert lamp.title == "Desk lamp with a dimmer." and lamp.price == 35.5


@pytest.mark.parametrize("fmt", sorted(ALL))
def test_every_bad_row_is_an_error_naming_the_problem(tmp_path, fmt):
    path, rows = _catalog(tmp_path, fmt)
    catalog = read_priced_catalog(path)
    assert catalog.rows == rows == len(catalog.items) + len(catalog.errors)
    reasons = {e["id"]: e["reason"] for e in catalog.errors}
    expected = {i: why for i, _, _, why, formats in BAD if fmt in formats}
    assert set(reasons) == set(expected) and not set(reasons) & set(catalog.ids)
    for item_id, why in expected.items():
        assert why in reasons[item_id], (item_id, reasons[item_id])


def test_a_csv_cell_that_is_not_json_is_an_error_keeping_the_raw_row(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text('id,title,features,details,price\n'
                    '1,Drill,"[""2 speeds""]","{""Brand"": ""Acme""}",90\n'
                    '2,Saw,not json,,40\n'
                    '3,Sander,,{broken,NaN\n')
    catalog = read_priced_catalog(path)
    assert catalog.ids == [1] and catalog.items[0].text == "Drill\n2 speeds Brand Acme"
    errors = {e["id"]: e for e in catalog.errors}
    assert errors[2]["reason"] == "features: the cell is not JSON (a list of strings)"
    assert errors[2]["row"] == {"title": "Saw", "features": "not json", "details": None, "price": 40}
    assert errors[3]["reason"] == "price: missing; details: the cell is not JSON (an object)"


def test_a_parquet_price_column_of_text_is_read_like_the_other_formats(tmp_path):
    path = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"sku": ["a", "b", "c", "d"], "title": ["Drill", "Saw", "Lamp", "Fan"],
                             "list_price": ["$1,299.00", "abc", "12", None]}), path)
    catalog = read_priced_catalog(path, price_column="list_price", id_column="sku")
    assert catalog.ids == ["a", "c"] and [i.price for i in catalog.items] == [1299.0, 12.0]
    assert {e["id"]: e["reason"] for e in catalog.errors} == {
        "b": "list_price: not a number of dollars ('abc'); write it like 1299.00 or $1,299.00",
        "d": "list_price: missing"}


@pytest.mark.parametrize("value, price", [
    (12, 12.0), (12.5, 12.5), ("12", 12.0), ("$12.50", 12.5), (" $1,299.00 ", 1299.0), ("1,234,567", 1234567.0),
])
def test_accepted_prices(value, price):
    assert catalog_price(value) == price


@pytest.mark.parametrize("value, why", [
    (None, "missing"), ("  ", "missing"), (True, "not a number (bool True)"), ("1,29", "not a number of dollars"),
    ("1.299,00", "not a number of dollars"), ("12-15", "not a number of dollars"), ("€12", "not a number of dollars"),
    ("12 USD", "not a number of dollars"), ("NaN", "not a number of dollars"), ([12], "not a number (list"),
    (math.nan, "not a finite number"), (10**400, "not a finite number (1000000"), ("-$3", "must be more than 0, got '-$3'"),
    (0, "must be more than 0, got 0"),
])
def test_refused_prices_say_why(value, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        catalog_price(value)


@pytest.mark.parametrize("content, kwargs, message", [
    ('{"id": 1, "title": "a", "cost": 3}\n', {}, "no price column 'price' (columns: cost, id, title)"),
    ('{"sku": 1, "title": "a", "price": 3}\n', {}, "no id column 'id'"),
    ('{"id": 1, "title": "a", "price": 3}\n{"id": 1, "title": "b", "price": 4}\n', {}, "1 duplicate ids in column 'id'"),
    ('{"id": 1, "title": "a", "price": 3}\n', {"price_column": "id"}, "cannot also be the id column"),
    ('{"id": 1, "title": "a", "price": 3}\n', {"price_column": "title"}, "cannot also be the id column or an item field"),
])
def test_whole_file_problems_raise(tmp_path, content, kwargs, message):
    path = tmp_path / "catalog.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_priced_catalog(path, **kwargs)


def test_an_unknown_format_raises_a_value_error(tmp_path):
    path = tmp_path / "catalog.xlsx"
    path.write_text("x")
    with pytest.raises(ValueError, match="unknown format '.xlsx'"):
        read_priced_catalog(path)
    assert issubclass(CatalogError, ValueError)


def _split(n: int, fraction=0.2, seed=7, start=0):
    ids = [f"sku-{i}" for i in range(start, n)]
    items = make_items(n)[start:]
    train, heldout = split_heldout(ids, items, fraction=fraction, seed=seed)
    return {i.title for i in train}, {i.title for i in heldout}


def test_the_split_is_seeded_and_honours_the_fraction():
    train, heldout = _split(2000)
    assert len(train) + len(heldout) == 2000 and not train & heldout
    assert 0.17 < len(heldout) / 2000 < 0.23
    assert _split(2000) == (train, heldout)
    assert _split(2000, seed=8)[1] != heldout


def test_appending_rows_moves_no_existing_row_between_the_sides():
    train, heldout = _split(300)
    more_train, more_heldout = _split(900)
    assert train <= more_train and heldout <= more_heldout and len(more_heldout) > len(heldout)
    assert _split(900, start=300)[1] == more_heldout - heldout  # the new rows' sides do not depend on the old


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1, math.nan])
def test_a_fraction_outside_the_range_is_refused(fraction):
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 0.5\]"):
        _split(200, fraction=fraction)


def test_a_split_with_too_few_on_a_side_is_refused():
    with pytest.raises(ValueError, match="each side needs at least 10"):
        _split(40, fraction=0.1)
    with pytest.raises(ValueError, match="each side needs at least 10"):
        _split(18, fraction=0.5)


def test_outputs_are_items_files_errors_and_facts(tmp_path):
    rows = [{"id": i, "title": f"Acme drill model {i}", "description": "Brushless.", "price": 10.0 + i} for i in range(120)]
    rows += [{"id": 500, "title": "Saw", "price": "abc"}, {"id": 501, "title": "Fan", "price": math.nan}]
    path = _write(tmp_path, "jsonl", rows)
    catalog = read_priced_catalog(path)
    train, heldout = split_heldout(catalog.ids, catalog.items, fraction=0.25, seed=1)
    out = tmp_path / "out"
    facts = write_catalog_outputs(catalog, train, heldout, out)
    assert load_items(out / "train.jsonl") == train and load_items(out / "heldout.jsonl") == heldout
    errors = [json.loads(line, parse_constant=pytest.fail) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["row"]["price"]) for e in errors] == [(500, "abc"), (501, "nan")]
    assert all("price: " in e["reason"] for e in errors)
    assert facts == json.loads((out / "facts.json").read_text()) == {
        "rows": 122, "items": 120, "errors": 2, "train": len(train), "heldout": len(heldout), "price_column": "price",
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert sorted(p.name for p in out.iterdir()) == ["errors.jsonl", "facts.json", "heldout.jsonl", "train.jsonl"]
    with pytest.raises(ValueError, match="are not the catalog's 120"):
        write_catalog_outputs(catalog, train[1:], heldout, tmp_path / "other")
    assert not (tmp_path / "other").exists()
