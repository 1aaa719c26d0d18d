"""The item's text: the course's scrubbing and the order of its parts (description, features,
details), shared by curation, serving and every member that reads an item."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

# The course's scrubbing rules for the details dict (boilerplate that says nothing about price).
DETAIL_REMOVALS = ('"Batteries Included?": "No"', '"Batteries Included?": "Yes"', '"Batteries Required?": "No"',
                   '"Batteries Required?": "Yes"', "By Manufacturer", "Item", "Date First", "Package", ":", "Number of",
                   "Best Sellers", "Number", "Product ")
_SCRUB_PUNCT = re.compile(r'[:\[\]"{}【】\s]+')


def scrub(text: str) -> str:
    """The course's scrub: fold punctuation and white space, drop 7+ character words with a digit
    (part numbers and model codes, which leak little but cost many tokens)."""
    text = _SCRUB_PUNCT.sub(" ", text).strip()
    text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
    words = text.split(" ")
    return " ".join(w for w in words if len(w) < 7 or not any(c.isdigit() for c in w))


DETAILS_PROBE_CHARS = 32  # how much of the scrubbed details block identifies it inside a text


def scrub_details(details: str) -> str:
    for removal in DETAIL_REMOVALS:
        details = details.replace(removal, "")
    return details


def details_to_json(details: dict | str | None) -> str | None:
    """Raw metadata carries details as a dict or as a JSON string; items keep a JSON string."""
    if details is None or details == "" or details == {}:
        return None
    return details if isinstance(details, str) else json.dumps(details, ensure_ascii=False)


def is_detail_value(value: Any) -> bool:
    """A detail's value as Amazon's metadata holds them: a string, a number, or one level of name ->
    string or number ("Best Sellers Rank": {"Automotive": 3031316}, which the features member reads)."""

    def scalar(v: Any) -> bool:
        return isinstance(v, (str, int, float)) and not isinstance(v, bool)

    return scalar(value) or (isinstance(value, dict) and all(isinstance(k, str) and scalar(v) for k, v in value.items()))


def compose_contents(description: Sequence[str] | str | None = None, features: Sequence[str] | None = None,
                     details: dict | str | None = None) -> str:
    """Description lines, then feature lines, then scrubbed details, each block ending in a newline
    (the course's order). This is the raw body before scrubbing and the character ceiling."""
    if isinstance(description, str):
        description = [description]
    contents = "\n".join(d for d in (description or []) if d)
    if contents:
        contents += "\n"
    feature_text = "\n".join(f for f in (features or []) if f)
    if feature_text:
        contents += feature_text + "\n"
    details_json = details_to_json(details)
    if details_json:
        contents += scrub_details(details_json) + "\n"
    return contents


def details_inside(text: str, details: dict | str | None) -> bool:
    """True when `text` already holds these details as curation writes them (a curated item's text
    does: description, features, then the scrubbed details). A client that sends such a text and
    the details dict gets them into the model's text once, and to the features members as a dict."""
    block = scrub(scrub_details(details_to_json(details) or ""))
    probe = block[:DETAILS_PROBE_CHARS]
    return bool(probe) and probe in scrub(text)


def compose_text(title: str, contents: str, ceiling_chars: int | None = None) -> str:
    """Title first, then the scrubbed body, cut to `ceiling_chars` characters before scrubbing.

    Token budgets are applied by the caller with the model's own tokenizer (curation, serving)."""
    title_part, body = scrub(title), scrub(contents[:ceiling_chars])
    return f"{title_part}\n{body}" if body else title_part
