"""app/model/richness: an item's class (title, short, full), as built by Item.title_only() and by the
API from a request's fields."""

from __future__ import annotations

from app.model.items import Item
from app.model.richness import FULL, SHORT, SHORT_WORDS, TITLE, TITLE_WORDS, body_words, richness
from app.pricing.core import member_item
from app.pricing.fields import ItemFields
from app.pricing.text import item_text

LONG = " ".join(f"word{i}" for i in range(SHORT_WORDS + 10))


def _item(text: str, **kw) -> Item:
    return Item(title=text.partition("\n")[0], price=10.0, text=text, **kw)


def test_a_curated_item_is_full_and_its_title_alone_is_title():
    item = _item(f"Acme drill\n{LONG}", category="Tools", details='{"Brand": "Acme"}')
    assert richness(item) == FULL and body_words(item) == SHORT_WORDS + 10
    alone = item.title_only()
    assert richness(alone) == TITLE and body_words(alone) == 0


def test_little_text_or_only_a_category_or_details_is_short():
    assert richness(_item("Acme drill\nCordless, two batteries.")) == SHORT
    assert richness(_item("Acme drill", category="Tools")) == SHORT
    assert richness(_item("Acme drill", details='{"Brand": "Acme"}')) == SHORT
    words = " ".join(["w"] * (SHORT_WORDS - 1))
    assert richness(_item(f"Acme drill\n{words}")) == SHORT and richness(_item(f"Acme drill\n{words} w")) == FULL


def test_one_long_line_is_a_description_not_a_title():
    line = " ".join(f"w{i}" for i in range(TITLE_WORDS + 1))
    assert richness(_item(line)) == FULL
    assert richness(_item(" ".join(f"w{i}" for i in range(TITLE_WORDS)))) == TITLE


def _request(**fields) -> Item:
    body = ItemFields(**fields)
    return member_item(body, item_text(body, 4000))


def test_the_api_builds_a_title_only_request_as_a_title_item():
    assert richness(_request(title="Acme premium heavy duty drill model 7")) == TITLE
    assert richness(_request(title="Acme drill", category="Tools")) == SHORT
    assert richness(_request(title="Acme drill", description="Cordless, two batteries. Brand Acme.")) == SHORT
    assert richness(_request(title="Acme drill", description=LONG)) == FULL
    assert richness(_request(title="Acme drill", details={"Brand": "Acme"})) == SHORT
