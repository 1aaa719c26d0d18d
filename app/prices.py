"""What a price answer is, shared by the decoding that makes it, the engines that return it and
everything that reads it: a leaf module, so none of them imports another to name these types."""

from __future__ import annotations

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
