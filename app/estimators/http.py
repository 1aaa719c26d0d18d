"""The `http` estimator: scores a running Pricer service through POST /v1/estimate/batch.

`pricer evaluate --estimator http --url http://127.0.0.1:8000` prices each item the way a client
of the service would; the API key comes from PRICER_API_KEY. An item's curated text is sent back
as title + description, which the service composes into the same text (compose_text is idempotent
on curated text), so the served model sees what the `llm` estimator gives it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx

from app.estimators.base import Estimator, EstimatorOptions
from app.model.items import Item
from app.model.text import scrub
from app.model.prices import PriceEstimate
from app.runtime.retry import retrying

RETRY_STATUSES = {429, 503}


class ServiceError(RuntimeError):
    """The service answered an error that retrying will not fix; the message carries its detail."""


def item_body(item: Item) -> dict:
    """The request body for an item: title and the rest of its curated text, its category and its
    details as a dict (the service's members read both, as they did when fitted: features-lr reads
    weight, brand and sales rank from the details). The curated text already holds the details, and
    the service sees that and does not append them a second time (app.model.text.details_inside)."""
    head, sep, rest = item.text.partition("\n")
    body = {"title": item.title, "description": rest} if sep and head == scrub(item.title) else {"description": item.text}
    details = sendable_details(item.details)
    return body | ({"category": item.category} if item.category else {}) | ({"details": details} if details else {})


def sendable_details(details: str | None) -> dict:
    """An item's details as the API takes them (app.model.text.is_detail_value); anything else is
    left out (it is still inside the curated text)."""
    from app.model.text import is_detail_value

    try:
        parsed = json.loads(details) if details else {}
    except json.JSONDecodeError:
        return {}
    return {k: v for k, v in parsed.items() if is_detail_value(v)} if isinstance(parsed, dict) else {}


class HttpEstimator(Estimator):
    name = "http"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        batch_size: int = 32,
        timeout_s: float = 600.0,
        retries: int = 20,
        adapter: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.batch_size = batch_size
        self.retries = retries
        self.adapter = adapter
        self.model: str | None = None
        self.adapters_seen: set[str | None] = set()
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport)

    @classmethod
    def create(cls, options: EstimatorOptions) -> HttpEstimator:
        if not options.url:
            raise ValueError("the http estimator needs the service's address: --url http://127.0.0.1:8000")
        key = options.settings.api_key.get_secret_value() if options.settings.api_key else None
        return cls(options.url, api_key=key, batch_size=min(32, options.settings.max_batch), adapter=options.adapter)

    def predict(self, items: Sequence[Item]) -> list[float]:
        return [estimate.price for estimate in self.estimates(items)]

    def estimates(self, items: Sequence[Item]) -> list[PriceEstimate]:
        """The service's price and [low, high] per item (so `evaluate` reports the interval's coverage)."""
        prices: list[PriceEstimate] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            bodies = [item_body(item) | ({"adapter": self.adapter} if self.adapter else {}) for item in chunk]
            estimates = self._post({"items": bodies})["estimates"]
            if len(estimates) != len(chunk):
                raise ServiceError(f"the service answered {len(estimates)} estimates for {len(chunk)} items")
            for estimate in estimates:
                self.model = estimate["model"]
                self.adapters_seen.add(estimate["adapter"])
                price = float(estimate["price"])
                prices.append(PriceEstimate(price, float(estimate.get("low", price)), float(estimate.get("high", price))))
        return prices

    def _post(self, body: dict) -> dict:
        """A busy service (429, 503) is asked again after the wait it names (Retry-After-Ms)."""
        try:
            response = retrying(RETRY_STATUSES, self.retries)(self._client.post, "/v1/estimate/batch", json=body)
        except httpx.TransportError as e:
            raise ServiceError(f"cannot reach the service at {self._client.base_url}: {e}") from e
        if response.status_code != 200:
            raise ServiceError(f"the service answered {response.status_code}: {_detail(response)}")
        return response.json()

    def close(self) -> None:
        self._client.close()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text[:300]))
    except ValueError:
        return response.text[:300]
