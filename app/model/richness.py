"""How much an item says beyond its title: its richness class, one of

    title   nothing but the title: no text after it, no details, no category (what Item.title_only()
            makes, and what the API builds from a request that sends only a title)
    short   a little text beyond the title (under SHORT_WORDS words), or a title with a category or
            details only
    full    everything else: a curated item's description, features and details

The ensemble's stack can read the class (indicator columns) and its interval has one pair of conformal
offsets per class (app.ensemble.crossfit): the members' errors on a title alone are not their errors on
a full description, so one interval for both is too wide for the one and too narrow for the other.

The thresholds, from ../shared/data (text after the first line, in words, after curation's scrub): the
curated items' bodies run 51 words at their 1st percentile in train.jsonl (60 in val.jsonl, median 99);
3 of 13,540 items in train + extra have under 20. So under 30 words is text no curated item looks like
(a one-line description), and SHORT_WORDS sits well below every percentile the members learned from.
Titles run 33 words at their 99th percentile and 52 at most: a single line of more than TITLE_WORDS
words is a description sent without a title (the API makes its first line the title), not a title.
"""

from __future__ import annotations

from app.model.items import Item

TITLE, SHORT, FULL = "title", "short", "full"
CLASSES = (TITLE, SHORT, FULL)
SHORT_WORDS = 30  # words after the title line below which a text is short
TITLE_WORDS = 60  # a one-line text longer than this is a description, not a title
INDICATED = (TITLE, SHORT)  # the stack's indicator columns, in this order (full is the baseline)


def body_words(item: Item) -> int:
    """Words in the item's text after its title line (a one-line text over TITLE_WORDS: all of them)."""
    first, _, rest = item.text.strip().partition("\n")
    words = len(rest.split())
    if not words and len(first.split()) > TITLE_WORDS:
        return len(first.split())
    return words


def richness(item: Item) -> str:
    """The item's class: TITLE, SHORT or FULL (module docstring)."""
    words = body_words(item)
    if not words and not item.details and not item.category:
        return TITLE
    return SHORT if words < SHORT_WORDS else FULL
