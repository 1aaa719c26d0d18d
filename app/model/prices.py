"""What a price answer is and how one is read out of a model's text, shared by the decoding that
makes it, the engines that return it and everything that reads it: a leaf module."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


class NoPriceError(ValueError):
    """The model's answer held no number that can be read as a price."""


@dataclass(frozen=True)
class PriceEstimate:
    """A point price and an interval, both taken from the model's own distribution."""

    price: float
    low: float
    high: float
    text: str = ""  # what the model wrote greedily after "Price is $"
    detail: dict = field(default_factory=dict)  # method-specific diagnostics (not part of the API)


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
