"""A frontier model behind any OpenAI-compatible chat API, asked the course's way: the system
message asks for the price only, the user message is the item, and the assistant's answer is
started with "Price is $" so that the model only has to write the number."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.estimators.base import Estimator, EstimatorOptions
from app.model.prompt import ANSWER_PREFIX, QUESTION
from app.model.items import Item
from app.model.prices import NoPriceError, parse_price
from app.runtime.retry import retrying

log = logging.getLogger(__name__)

SYSTEM_MESSAGE = "You estimate prices of items. Reply only with the price, no explanation"
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class FrontierError(RuntimeError):
    """The API refused or failed; the message names the status and the API's words."""


def messages_for(item: Item, comparables: Sequence[tuple[str, float]] = ()) -> list[dict]:
    """The course's messages: the question without "to the nearest dollar", the answer started.
    With `comparables` (title, price), the course's week-8 RAG agent: the similar items and their
    prices come first, as context."""
    question = QUESTION.replace(" to the nearest dollar", "")
    context = ""
    if comparables:
        similar = "\n\n".join(f"{title}\nPrice is ${price:.2f}" for title, price in comparables)
        context = (
            "To provide some context, here are some other items that might be similar to the item you need to "
            f"estimate.\n\n{similar}\n\nAnd now the question for you:\n\n"
        )
    return [
        {"role": "system", "content": SYSTEM_MESSAGE},
        {"role": "user", "content": f"{context}{question}\n\n{item.text}"},
        {"role": "assistant", "content": ANSWER_PREFIX},
    ]


class FrontierEstimator(Estimator):
    name = "frontier"

    def __init__(self, base_url: str, model: str, api_key: str | None, *, seed: int = 42,
                 max_tokens: int = 5, retries: int = 3, timeout: float = 60.0, transport=None,
                 comparables: int = 0, index=None):
        import httpx

        if comparables and index is None:
            raise FrontierError(
                f"{comparables} comparables asked (PRICER_FRONTIER_COMPARABLES) but there is no index: build one "
                f"with `make index`, or set PRICER_FRONTIER_COMPARABLES=0"
            )
        self.model, self.seed, self.max_tokens, self.retries = model, seed, max_tokens, retries
        self.comparables, self.index = comparables, index
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout, transport=transport)
        self.unparsed = 0  # answers with no price (guessed as 0, as the course does)

    @classmethod
    def create(cls, options: EstimatorOptions) -> FrontierEstimator:
        return cls.from_settings(options.settings, url=options.url, seed=options.seed)

    @classmethod
    def from_settings(cls, settings, *, url: str | None = None, model: str | None = None, comparables: int | None = None,
                      seed: int = 42, retries: int = 3, timeout: float = 60.0, require_index: bool = False) -> FrontierEstimator:
        """The configured endpoint, asked with `comparables` (default PRICER_FRONTIER_COMPARABLES)
        neighbours from the configured index. No index: the plain question, logged; or, with
        `require_index`, FrontierError (a member fitted with comparables must be asked with them)."""
        key = settings.frontier_api_key.get_secret_value() if settings.frontier_api_key else None
        k = settings.frontier_comparables if comparables is None else comparables
        index = None
        if k:
            from app.index.service import index_from_settings

            service = index_from_settings(settings)
            index = service.index if service is not None else None
            if index is None and require_index:
                raise FrontierError(f"{k} comparables asked but there is no index (build one with `make index`)")
            if index is None:
                log.warning("frontier: no comparables index, asking the plain question (no similar items)")
                k = 0
        return cls(url or settings.frontier_base_url, model or settings.frontier_model, key, seed=seed,
                   retries=retries, timeout=timeout, comparables=k, index=index)

    def similar(self, item: Item) -> list[tuple[str, float]]:
        """The k most similar indexed items (never one with the item's own text)."""
        if not self.comparables:
            return []
        return [(c.title, c.price) for c in self.index.search([item.text], self.comparables, exclude=True)[0]]

    def answer(self, item: Item) -> str:
        import httpx

        body = {
            "model": self.model,
            "messages": messages_for(item, self.similar(item)),
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        try:  # a rate limit or a busy API is asked again after the wait it names (Retry-After)
            response = retrying(_RETRY_STATUS, self.retries)(self.client.post, "chat/completions", json=body)
        except httpx.TransportError as e:
            raise FrontierError(f"cannot reach {self.client.base_url}: {e}") from None
        if response.status_code != 200:
            raise FrontierError(f"{self.client.base_url}chat/completions answered {response.status_code}: {response.text[:300]}")
        try:
            return response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise FrontierError(f"unexpected answer from the API: {response.text[:300]}") from None

    def predict(self, items: Sequence[Item]) -> list[float]:
        guesses = []
        for item in items:
            reply = self.answer(item)
            try:
                guesses.append(parse_price(reply))
            except NoPriceError:
                self.unparsed += 1
                log.warning("frontier: no price in %r for %r; guessing 0", reply[:40], item.title[:60])
                guesses.append(0.0)
        return guesses

    def close(self) -> None:
        self.client.close()
