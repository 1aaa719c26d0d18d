"""The course's prompt and completion: the one prompt builder every stage shares, so the text the
model was trained on and the text it is asked about at serving time come from the same function."""

from __future__ import annotations

from collections.abc import Sequence

from app.model.text import scrub

QUESTION = "How much does this cost to the nearest dollar?"
ANSWER_PREFIX = "Price is $"


def build_prompt(text: str, context: str = "") -> str:
    """The course's prompt. The model's answer continues right after "Price is $". `context`: the
    comparables block (`comparables_context`) of a retrieval-augmented prompt, before the item."""
    return f"{QUESTION}\n\n{context}{text}\n\n{ANSWER_PREFIX}"


COMPARABLES_HEADER = "Similar items and their prices:"
COMPARABLE_TITLE_WORDS = 6  # enough to tell what the neighbour is, few tokens (5 lines: about 70)


def comparables_context(comparables: Sequence[tuple[str, float]]) -> str:
    """The block a retrieval-augmented prompt carries before the item: each neighbour's first title
    words and its price to the nearest dollar, most similar first ("" when there are none)."""
    if not comparables:
        return ""
    lines = [f"- {' '.join(scrub(title).split()[:COMPARABLE_TITLE_WORDS])}: ${round(price)}" for title, price in comparables]
    return COMPARABLES_HEADER + "\n" + "\n".join(lines) + "\n\nThis item:\n"


def build_completion(price: float) -> str:
    """What the model learns to write after "Price is $": the price to the nearest dollar."""
    return f"{round(price)}.00"
