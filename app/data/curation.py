"""The course's curation rules: one raw metadata row in, one priced Item out, or a reason to drop it.

Price from $0.50 to $999.49; text from description, features and scrubbed details
(app.model.text.compose_contents) with more than `min_chars` characters; title first, scrubbed, cut to
`ceiling_chars` before scrubbing; more than `min_tokens` tokens of the tokenizer, cut to `max_tokens`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from app.model.items import Item
from app.model.text import compose_contents, compose_text, details_to_json

MIN_PRICE, MAX_PRICE = 0.5, 999.49

# Reasons a row is dropped (the summary counts them).
NO_PRICE = "no price"
PRICE_NOT_A_NUMBER = "price not a number"
PRICE_OUT_OF_RANGE = "price out of range"
NO_TITLE = "no title"
TOO_SHORT = "contents too short"
TOO_FEW_TOKENS = "too few tokens"
MALFORMED = "malformed row"


@dataclass(frozen=True)
class Rules:
    min_tokens: int = 150
    max_tokens: int = 160
    min_chars: int = 300
    min_price: float = MIN_PRICE
    max_price: float = MAX_PRICE

    @property
    def ceiling_chars(self) -> int:
        return self.max_tokens * 7  # the course's character ceiling before tokenizing

    @classmethod
    def from_settings(cls, settings) -> Rules:
        if settings.curate_max_tokens < settings.curate_min_tokens:
            raise ValueError("curate_max_tokens must be at least curate_min_tokens")
        return cls(settings.curate_min_tokens, settings.curate_max_tokens, settings.curate_min_chars)


class Dropped(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_price(value: object) -> float:
    """A raw price: a number or a numeric string; "None", null and anything else are dropped."""
    if value is None or value == "" or value == "None":
        raise Dropped(NO_PRICE)
    try:
        price = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        price = math.nan
    if not math.isfinite(price):
        raise Dropped(PRICE_NOT_A_NUMBER)
    return price


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    raise Dropped(MALFORMED)


class Curator:
    """Applies the rules with one tokenizer (an HF tokenizer: encode without special tokens, decode)."""

    def __init__(self, tokenizer, rules: Rules = Rules()):
        self.tokenizer = tokenizer
        self.rules = rules

    def curate(self, row: dict, category: str | None = None) -> Item:
        """The Item for `row`, or Dropped(reason)."""
        r = self.rules
        price = read_price(row.get("price"))
        if not (r.min_price <= price <= r.max_price):
            raise Dropped(PRICE_OUT_OF_RANGE)
        title = row.get("title")
        if not isinstance(title, str) or not title.strip():
            raise Dropped(NO_TITLE)
        details = row.get("details")
        if details is not None and not isinstance(details, (dict, str)):
            raise Dropped(MALFORMED)
        contents = compose_contents(_strings(row.get("description")), _strings(row.get("features")), details)
        if len(contents) <= r.min_chars:
            raise Dropped(TOO_SHORT)
        text = compose_text(title, contents, ceiling_chars=r.ceiling_chars)
        tokens = self.tokenizer.encode(text, add_special_tokens=False)
        if len(tokens) <= r.min_tokens:
            raise Dropped(TOO_FEW_TOKENS)
        text = self.tokenizer.decode(tokens[: r.max_tokens])
        return Item(title=title.strip(), category=category, price=price, text=text, details=details_to_json(details))


@dataclass
class Summary:
    """What curation read, kept and dropped (and why)."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason -> "file:line" of its first row

    def drop(self, reason: str, where: str) -> None:
        self.dropped[reason] += 1
        self.examples.setdefault(reason, where)

    def to_dict(self) -> dict:
        return {"read": self.read, "kept": self.kept, "dropped": dict(self.dropped.most_common()),
                "first_dropped_at": self.examples}


def default_tokenizer_source(settings) -> Path | None:
    """The curation tokenizer folder: the setting, else the prepared SmolLM2 base; None: use the GGUF."""
    if settings.curate_tokenizer:
        return Path(settings.curate_tokenizer)
    prepared = settings.base_dir / "smollm2-135m"
    if (prepared / "tokenizer.json").is_file() or (prepared / "tokenizer_config.json").is_file():
        return prepared
    return None


def load_tokenizer(folder: Path | None):
    from transformers import AutoTokenizer

    if folder is not None:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"tokenizer folder not found: {folder}")
        return AutoTokenizer.from_pretrained(str(folder))
    from app.store.base import PACKAGED, find_gguf

    gguf = find_gguf(PACKAGED["smollm2-135m"])
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
