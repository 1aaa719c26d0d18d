"""The item schema, the prompt builder and the price parser: shared by every stage.

Curation writes items, training turns them into prompt/completion pairs, evaluation and serving
turn them into prompts. All of them go through this module, so the text the model was trained on
and the text it is asked about at serving time come from the same function.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.prices import NoPriceError
from app.store.atomic import atomic_write_text

QUESTION = "How much does this cost to the nearest dollar?"
ANSWER_PREFIX = "Price is $"

# The course's scrubbing rules for the details dict (boilerplate that says nothing about price).
DETAIL_REMOVALS = (
    '"Batteries Included?": "No"',
    '"Batteries Included?": "Yes"',
    '"Batteries Required?": "No"',
    '"Batteries Required?": "Yes"',
    "By Manufacturer",
    "Item",
    "Date First",
    "Package",
    ":",
    "Number of",
    "Best Sellers",
    "Number",
    "Product ",
)
_SCRUB_PUNCT = re.compile(r'[:\[\]"{}【】\s]+')


class Item(BaseModel):
    """One priced product, as curated. `text` is the description the model sees, title first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str = Field(min_length=1)
    category: str | None = None
    price: float = Field(gt=0, allow_inf_nan=False)
    text: str = Field(min_length=1)
    details: str | None = None
    origin: str | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price_is_a_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"price must be a number of dollars, got {value!r}")
        return value

    @property
    def prompt(self) -> str:
        return build_prompt(self.text)

    @property
    def completion(self) -> str:
        return build_completion(self.price)


# ---------------------------------------------------------------------------------------------
# Text and prompts


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
    if isinstance(details, str):
        return details
    return json.dumps(details, ensure_ascii=False)


def compose_contents(
    description: Sequence[str] | str | None = None,
    features: Sequence[str] | None = None,
    details: dict | str | None = None,
) -> str:
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
    if ceiling_chars is not None:
        contents = contents[:ceiling_chars]
    title_part = scrub(title)
    body = scrub(contents)
    return f"{title_part}\n{body}" if body else title_part


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


# ---------------------------------------------------------------------------------------------
# Reading a price out of a model's answer


_PRICE = re.compile(r"[-+]?\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d*)?")


def parse_price(answer: str) -> float:
    """Read the price a model wrote after "Price is $": `1,299.99`, `12.`, `45 dollars`, `$7`.

    Takes the first number in the answer; commas are thousands separators. Raises NoPriceError,
    with the answer quoted, when there is none."""
    match = _PRICE.search(answer.replace("\u00a0", " "))
    if match is None:
        raise NoPriceError(f"no price in the model's answer {answer[:80]!r}")
    whole = match.group(1).replace(",", "")
    fraction = match.group(2) or ""
    value = float(whole + (fraction if len(fraction) > 1 else ""))
    if match.group(0).lstrip().startswith("-"):
        raise NoPriceError(f"negative price in the model's answer {answer[:80]!r}")
    if not math.isfinite(value):
        raise NoPriceError(f"price is not finite in {answer[:80]!r}")
    return value


# ---------------------------------------------------------------------------------------------
# JSONL


class ItemsFileError(ValueError):
    """A row of an items file that is not a valid item. The message names the file and line."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "row"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


@dataclass
class SkippedRow:
    line: int
    reason: str


def iter_items(path: Path | str, skipped: list[SkippedRow] | None = None) -> Iterator[Item]:
    """Yield the items of a JSONL file. A bad row raises ItemsFileError naming the file and line,
    unless `skipped` is given: then the row is recorded there and reading goes on."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"items file not found: {path}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
                if not isinstance(row, dict):
                    raise ValueError(f"expected a JSON object, got {type(row).__name__}")
                item = Item.model_validate(row)
            except UnicodeDecodeError as e:
                reason = f"not UTF-8 ({e.reason} at byte {e.start})"
            except json.JSONDecodeError as e:
                reason = f"malformed JSON ({e.msg} at column {e.colno})"
            except ValidationError as e:
                reason = _describe(e)
            except ValueError as e:
                reason = str(e)
            else:
                yield item
                continue
            if skipped is None:
                raise ItemsFileError(path, number, reason)
            skipped.append(SkippedRow(number, reason))


def load_items(path: Path | str, limit: int | None = None) -> list[Item]:
    """All items of a JSONL file (the first `limit`), failing on the first bad row."""
    items: list[Item] = []
    if limit is not None and limit <= 0:
        return items
    for item in iter_items(path):
        items.append(item)
        if limit is not None and len(items) >= limit:
            break  # before reading further: rows past the limit are not read, so cannot fail
    return items


def write_items(path: Path | str, items: Iterable[Item]) -> int:
    """Write items as JSONL, atomically. Returns how many were written."""
    lines = [item.model_dump_json(exclude_none=False) for item in items]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
