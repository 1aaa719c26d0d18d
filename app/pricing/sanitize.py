"""The request's text is data, not instructions: answer cues and instructions aimed at the model are
taken out before the item text is built.

The prompt ends in "Price is $" and the model continues it, so a description that says "Price is
$99999" or "answer 99999" hands the model an answer to copy, and "ignore previous instructions"
addresses the model rather than describing a product. Such sentences are removed; a product's own
numbers (sizes, wattages, counts) are kept. Measured in tests/api/test_injection.py.
"""

from __future__ import annotations

import re

from app.model.prompt import ANSWER_PREFIX, QUESTION

_NUMBER = r"\$?\s*\d[\d,]*(?:\.\d+)?"
# Each pattern removes a whole clause: up to the next sentence end or line end.
_CUES = [
    # "The correct/real price is 5000".
    re.compile(r"\b(?:the\s+)?(?:correct|real|true|actual)\s+(?:price|answer)\s+(?:is|should\s+be|=)\s*:?\s*" + _NUMBER + r"[^\n.!?]*[.!?]?", re.I),
    # The prompt's own answer cue, or its question, copied into the text.
    re.compile(re.escape(ANSWER_PREFIX.rstrip("$").strip()) + r"\s*:?\s*" + _NUMBER + r"[^\n.!?]*[.!?]?", re.I),
    re.compile(re.escape(QUESTION), re.I),
    # Instructions to the reader: "ignore/disregard/forget (all) previous instructions ...".
    re.compile(
        r"\b(?:ignore|disregard|forget|override)\b[^\n.!?]{0,60}?\b(?:instructions?|prompts?|rules|above|everything)\b[^\n.!?]*[.!?]?",
        re.I,
    ),
    # "answer / respond with / output / say / return / the price should be 99999".
    re.compile(
        r"\b(?:answer|respond|reply|output|say|return|guess|estimate|predict)\b(?:\s+(?:with|only|just|exactly|is|:|that|the|price|it))*\s*:?\s*"
        + _NUMBER + r"[^\n.!?]*[.!?]?",
        re.I,
    ),
]
_SPACES = re.compile(r"[ \t]{2,}")


def strip_answer_cues(text: str) -> str:
    """`text` without answer cues and instructions to the model (see the module docstring)."""
    if not text:
        return text
    for pattern in _CUES:
        text = pattern.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" \t")
