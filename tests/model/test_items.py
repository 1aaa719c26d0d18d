"""app/model (items, item_files, prompt, prices): the prompt, the completion, the price parser, JSONL reading and atomic writes."""

from __future__ import annotations

import json
import math
import os

import pytest

from app.model.items import Item
from app.model.item_files import ItemsFileError, SkippedRow, iter_items, load_items, write_items
from app.model.prices import NoPriceError, parse_price
from app.runtime.atomic import atomic_write_text
from app.model.prompt import build_completion, build_prompt
from app.model.text import compose_contents, compose_text, scrub


def _item(**kw) -> dict:
    row = {"title": "Acme lamp", "category": "Electronics", "price": 12.5, "text": "Acme lamp\nA lamp.", "details": None}
    row.update(kw)
    return row


# --- prompt and completion


def test_prompt_is_the_course_prompt():
    assert build_prompt("Acme lamp\nA lamp.") == (
        "How much does this cost to the nearest dollar?\n\nAcme lamp\nA lamp.\n\nPrice is $"
    )
    assert Item(**_item()).prompt == build_prompt("Acme lamp\nA lamp.")


@pytest.mark.parametrize(
    ("price", "completion"),
    [(12.49, "12.00"), (12.51, "13.00"), (999.49, "999.00"), (0.5, "0.00"), (12.5, "12.00"), (13.5, "14.00")],
)
def test_completion_is_the_rounded_price(price, completion):
    # Python's round (half to even), as the course's str(round(price)) + ".00"
    assert build_completion(price) == completion


# --- price parser


@pytest.mark.parametrize(
    ("answer", "price"),
    [
        ("1,299.99", 1299.99),
        ("12.", 12.0),
        ("45 dollars", 45.0),
        ("$7", 7.0),
        (" 99.00", 99.0),
        ("250.00\n\nHow much", 250.0),
        ("about 3,000", 3000.0),
        ("7.5 or 8", 7.5),
        ("0", 0.0),
    ],
)
def test_parse_price_reads_what_a_model_writes(answer, price):
    assert parse_price(answer) == pytest.approx(price)


@pytest.mark.parametrize("answer", ["", "no idea", "   ", "$", "free!", "-5.00"])
def test_parse_price_says_when_there_is_no_price(answer):
    with pytest.raises(NoPriceError):
        parse_price(answer)


def test_no_price_error_quotes_the_answer():
    with pytest.raises(NoPriceError, match="no idea"):
        parse_price("no idea")


# --- text composition (the course's scrubbing)


def test_scrub_drops_part_numbers_and_punctuation():
    assert scrub('Model: "XJ-90210A" fits [all] {cars} X100') == "Model fits all cars X100"


def test_compose_contents_orders_description_features_details_and_scrubs_boilerplate():
    contents = compose_contents(
        ["Line one.", "Line two."],
        ["Feature A"],
        {"Batteries Included?": "No", "Brand": "Acme"},
    )
    assert contents.startswith("Line one.\nLine two.\nFeature A\n")
    assert "Batteries" not in contents and "Acme" in contents
    assert contents.endswith("\n")


def test_compose_text_puts_the_title_first_and_applies_the_ceiling():
    text = compose_text("Acme Lamp ABC12345", "x" * 50 + " tail", ceiling_chars=20)
    title, body = text.split("\n")
    assert title == "Acme Lamp"
    assert body == "x" * 20


# --- JSONL


def test_items_round_trip(tmp_path):
    items = [Item(**_item()), Item(**_item(title="Other", price=3.0, category=None, details='{"a": 1}'))]
    path = tmp_path / "items.jsonl"
    assert write_items(path, items) == 2
    assert load_items(path) == items
    assert load_items(path, limit=1) == items[:1]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"title": "x", "price": 3', "malformed JSON"),
        (json.dumps(_item(price=-3.0)), "price"),
        (json.dumps(_item(price="12.99")), "price must be a number"),
        (json.dumps(_item(price=True)), "price must be a number"),
        ('{"title": "x", "category": null, "price": NaN, "text": "t"}', "price"),
        (json.dumps({k: v for k, v in _item().items() if k != "text"}), "text"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_a_bad_row_names_file_and_line(tmp_path, line, reason):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(_item()) + "\n\n" + line + "\n" + json.dumps(_item()) + "\n")
    with pytest.raises(ItemsFileError) as caught:
        load_items(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: ")
    assert reason in str(caught.value)


def test_bad_bytes_are_reported_not_crashed_on(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(json.dumps(_item()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(ItemsFileError, match=r":2: not UTF-8"):
        load_items(path)


def test_skipped_rows_are_recorded_and_reading_goes_on(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("not json\n" + json.dumps(_item()) + "\n" + json.dumps(_item(price=0)) + "\n")
    skipped: list[SkippedRow] = []
    items = list(iter_items(path, skipped))
    assert len(items) == 1
    assert [s.line for s in skipped] == [1, 3]


def test_missing_items_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_items(tmp_path / "nope.jsonl")


# --- atomic writes


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert os.listdir(path.parent) == ["out.txt"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "half \ud800 written")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_item_rejects_non_finite_and_zero_prices():
    for bad in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            Item(**_item(price=bad))


def test_limit_stops_before_reading_rows_past_it(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(_item()) + "\n" + "not json\n")
    assert len(load_items(path, limit=1)) == 1
    assert load_items(path, limit=0) == []
    with pytest.raises(ItemsFileError):
        load_items(path, limit=2)


def test_details_inside_finds_curated_details_only():
    from app.model.text import compose_contents, compose_text, details_inside

    details = {"Brand": "Acme", "Item Weight": "3.5 pounds"}
    curated = compose_text("Acme drill", compose_contents("Cordless.", None, details))
    assert details_inside(curated, details) and details_inside(curated, '{"Brand": "Acme", "Item Weight": "3.5 pounds"}')
    assert not details_inside("Acme drill\nCordless.", details)
    assert not details_inside(curated, {"Brand": "Other"}) and not details_inside(curated, None)
