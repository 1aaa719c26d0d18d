"""The text the model is asked about, built from an item's fields (app.pricing.fields.ItemFields):
curation's composition, answer cues taken out, cut to the spec's character ceiling."""

from __future__ import annotations

from app.model.text import compose_contents, compose_text, details_inside
from app.pricing.sanitize import strip_answer_cues

NOTHING_TO_PRICE = "no words or numbers left once punctuation is removed; send a real title or description"


def item_text(body, ceiling: int) -> str:
    """The text the model is asked about: curation's composition, answer cues taken out, cut to
    `ceiling` characters (app.model.spec.text_ceiling: the cutter's own cheap pre-cut; the engine then
    cuts it to the exact token budget with the serving spec)."""
    # details already inside the description (a curated text sent back) are not appended twice
    details = None if details_inside(body.description or "", body.details) else body.details
    contents = strip_answer_cues(compose_contents(body.description, body.features, details)[:ceiling])
    title = strip_answer_cues((body.title or "")[:ceiling])
    return compose_text(title, contents, ceiling_chars=ceiling).strip("\n")


def raw_size(body) -> int:
    """Characters in an item's fields (to decide whether building its text goes off the loop)."""
    size = len(body.title or "") + len(body.description or "")
    size += sum(len(f) for f in body.features or ())
    return size + sum(len(k) + len(str(v)) for k, v in (body.details or {}).items())


def has_words(text: str) -> bool:
    """False for a text with nothing to price (only punctuation and spaces)."""
    return any(c.isalnum() for c in text)
