"""The text the ensemble's members read: cut as the curated texts they were fitted on are.

Curation cuts an item's text to 160 tokens of the course's tokenizer (Llama 3.1), about 178 SmolLM2
tokens on train.jsonl (median 176, 90th percentile 191). A client that sends a whole description
(or details that curation cut off) would give features-lr, embed-gbm and knn a text several hundred
characters longer than any they were fitted on, and their answers move: on val, sending the details
moved them by $29, $24 and $14 on average and the served stack from $95.61 (the fit's own answers)
to $100.02; cut to 180 SmolLM2 tokens, by $2, $13 and $10 and $95.11 (docs/ensemble.md). The LLM
member is not cut here: its prompt has its own budget (app.model.spec).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from app.model.cutter import token_cutter

log = logging.getLogger("pricer.ensemble")

TextCut = Callable[[str], str]


def member_text_cutter(settings) -> TextCut | None:
    """The cut for PRICER_MEMBER_TEXT_TOKENS with the served base model's tokenizer; None (logged)
    when it is 0 or the tokenizer cannot be loaded: the members then read the whole text."""
    tokens = settings.member_text_tokens
    if not tokens:
        return None
    try:
        from transformers import AutoTokenizer

        from app.store.base import resolve_base

        tokenizer = AutoTokenizer.from_pretrained(str(Path(resolve_base(settings, prepare_missing=False))))
    except Exception as e:  # no tokenizer in the store (a test's fake base): read the whole text
        log.warning("ensemble members read the whole text (no tokenizer to cut it to %d tokens: %s)", tokens, e)
        return None
    return token_cutter(tokenizer, tokens)
