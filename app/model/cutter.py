"""The one cutter: prompts within a token budget. The item text is cut with the model's own
tokenizer, never the question or "Price is $", and an over-long text is never an error. Serving
(app.model.spec.ServingSpec, at the served budget) and training examples (at the training length) both
cut with it. `token_cutter` cuts a bare text (no prompt around it) to its first tokens."""

from __future__ import annotations

from collections.abc import Sequence

from app.model.prompt import build_prompt

# No token of a real tokenizer is this long on average: cutting a text to budget * MAX_CHARS_PER_TOKEN
# characters before tokenizing (or before scrubbing, at the API edge: `char_ceiling`) bounds the work a
# 1 MB description costs, without changing the result for any text whose first `budget` tokens fit in it.
MAX_CHARS_PER_TOKEN = 32


def char_ceiling(budget: int) -> int:
    """Characters of raw text worth keeping for a prompt of `budget` tokens."""
    return budget * MAX_CHARS_PER_TOKEN


def token_cutter(tokenizer, tokens: int):
    """text -> its first `tokens` tokens (a text within the limit comes back unchanged): the cut for a
    bare text, without a prompt around it (the ensemble's members, llm-head's features)."""

    def cut(text: str) -> str:
        ids = tokenizer.encode(text, add_special_tokens=False)
        return text if len(ids) <= tokens else tokenizer.decode(ids[:tokens])

    return cut


class PromptCutter:
    def __init__(self, tokenizer, budget: int):
        self.tokenizer, self.budget = tokenizer, budget
        self.overhead = len(self._encode(build_prompt("")))

    def _encode(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt).input_ids

    @staticmethod
    def clean(text: str) -> str:
        """Lone surrogates (valid JSON escapes, invalid Unicode) would make the tokenizer raise."""
        if not text.isascii():
            text = text.encode("utf-8", "replace").decode("utf-8")
        return text

    def cut_text(self, text: str, context: str = "") -> str:
        """The longest prefix of `text` (in whole tokens) whose prompt fits the budget; the
        comparables `context` is never cut (it is short: a few titles and prices)."""
        text = self.clean(text)[: char_ceiling(self.budget)]
        overhead = self.overhead if not context else len(self._encode(build_prompt("", context)))
        keep = self.budget - overhead
        if keep <= 0:
            return ""
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        while keep > 0:
            cut = text if keep >= len(offsets) else text[: offsets[keep - 1][1]]
            over = len(self._encode(build_prompt(cut, context))) - self.budget
            if over <= 0:
                return cut
            keep -= over  # tokens can merge differently at the seams; shrink and retry
        return ""

    def prompt_ids_one(self, text: str, context: str = "") -> list[int]:
        text = self.clean(text)
        if len(text) <= char_ceiling(self.budget):
            ids = self._encode(build_prompt(text, context))
            if len(ids) <= self.budget:
                return ids
        return self._encode(build_prompt(self.cut_text(text, context), context))

    def prompt_text_one(self, text: str, context: str = "") -> str:
        """The prompt as text (what raw vLLM is sent in the benchmark): the same cut."""
        return self.tokenizer.decode(self.prompt_ids_one(text, context), skip_special_tokens=True)

    def prompt_ids(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[list[int]]:
        contexts = contexts or [""] * len(texts)
        return [self.prompt_ids_one(text, context) for text, context in zip(texts, contexts, strict=True)]
