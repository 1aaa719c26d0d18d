"""The course's curation rules on raw rows, with the real SmolLM2 tokenizer."""

from __future__ import annotations

import json

import pytest

from app.data import curation as c
from app.data.curation import Curator, Dropped, Rules, read_price
from app.data.raw import category_from_path, iter_local, RawSourceError
from tests.data.raw_rows import LONG, raw_row, write_raw


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def curator(tokenizer):
    return Curator(tokenizer, Rules())


def test_a_good_row_becomes_an_item_title_first_within_the_token_budget(curator, tokenizer):
    item = curator.curate(raw_row(3, price="19.99"), "Appliances")
    assert item.price == 19.99 and item.category == "Appliances"
    assert item.title == "Acme lamp number 3 with model code XJ000003"
    first_line = item.text.split("\n")[0]
    assert first_line == "Acme lamp number 3 with model code"  # scrubbed: the part number is gone
    assert 150 < len(tokenizer.encode(item.text, add_special_tokens=False)) <= 160
    assert "Batteries" not in item.text
    assert json.loads(item.details)["Brand"] == "Acme"


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (None, c.NO_PRICE), ("None", c.NO_PRICE), ("", c.NO_PRICE),
        ("$12.99", c.PRICE_NOT_A_NUMBER), ("twelve", c.PRICE_NOT_A_NUMBER), (True, c.PRICE_NOT_A_NUMBER),
        (float("nan"), c.PRICE_NOT_A_NUMBER), ([12], c.PRICE_NOT_A_NUMBER),
        (0.49, c.PRICE_OUT_OF_RANGE), (999.5, c.PRICE_OUT_OF_RANGE), (-5, c.PRICE_OUT_OF_RANGE),
    ],
)
def test_bad_prices_are_dropped_with_a_reason(curator, price, reason):
    with pytest.raises(Dropped) as dropped:
        curator.curate(raw_row(price=price))
    assert dropped.value.reason == reason


@pytest.mark.parametrize(("price", "value"), [(0.5, 0.5), (999.49, 999.49), ("42", 42.0), (7, 7.0)])
def test_price_bounds_are_inclusive(curator, price, value):
    assert read_price(price) == value
    assert curator.curate(raw_row(price=price)).price == value


def test_short_contents_and_few_tokens_are_dropped(curator):
    short = raw_row(description=["tiny"], features=[], details={})
    with pytest.raises(Dropped, match=c.TOO_SHORT):
        curator.curate(short)
    # exactly 300 characters is not enough (the course keeps more than 300)
    exactly = raw_row(description=["x" * 299], features=[], details=None)  # + the newline = 300
    with pytest.raises(Dropped, match=c.TOO_SHORT):
        curator.curate(exactly)
    # over 300 characters but few tokens: long part numbers are scrubbed away
    codes = " ".join(f"AB{i:06d}" for i in range(60))
    with pytest.raises(Dropped, match=c.TOO_FEW_TOKENS):
        curator.curate(raw_row(description=[codes], features=[], details=None))


def test_missing_title_and_odd_shapes_are_dropped(curator):
    with pytest.raises(Dropped, match=c.NO_TITLE):
        curator.curate(raw_row(title="  "))
    with pytest.raises(Dropped, match=c.MALFORMED):
        curator.curate(raw_row(details=[1, 2]))
    with pytest.raises(Dropped, match=c.MALFORMED):
        curator.curate(raw_row(features={"a": 1}))


def test_details_as_a_json_string_and_description_as_a_string(tokenizer):
    roomy = Curator(tokenizer, Rules(min_tokens=20, max_tokens=400))
    item = roomy.curate(raw_row(description=LONG * 2, details='{"Brand": "Zeta"}'))
    assert item.details == '{"Brand": "Zeta"}'
    assert "Zeta" in item.text


def test_rules_come_from_settings():
    from app.config import Settings

    rules = Rules.from_settings(Settings(curate_min_tokens=20, curate_max_tokens=40, curate_min_chars=100))
    assert (rules.min_tokens, rules.max_tokens, rules.min_chars, rules.ceiling_chars) == (20, 40, 100, 280)
    with pytest.raises(ValueError):
        Rules.from_settings(Settings(curate_min_tokens=50, curate_max_tokens=40))


def test_local_reader_counts_malformed_lines_and_takes_category_from_file_name(tmp_path):
    path = write_raw(tmp_path / "meta_Appliances.jsonl", [raw_row(1)], ["{broken", "[1, 2]"])
    rows = list(iter_local(path))
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[0].category == "Appliances" and rows[0].row["title"].startswith("Acme")
    assert rows[1].row is None and "malformed JSON" in rows[1].error
    assert rows[2].row is None and rows[2].error == "not a JSON object"
    assert category_from_path(tmp_path / "meta_Video_Games.jsonl.gz") == "Video_Games"
    other = write_raw(tmp_path / "mine.jsonl", [raw_row(2)])
    assert next(iter_local(other)).category == "Tools & Home Improvement"  # the row's main_category
    with pytest.raises(RawSourceError, match="not found"):
        list(iter_local(tmp_path / "absent.jsonl"))
