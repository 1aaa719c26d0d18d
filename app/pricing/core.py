"""PricingCore: items in, answers out, the same for the service and the batch job.

Per call: the items' texts (app.pricing.text), one engine call per pinned adapter (leased, so a
swap never unloads it underneath), the ensemble's answer with the LLM one member (or the LLM's own
when no bundle is loaded), the comparables when asked, and the one rounding of the answer to cents
(`Priced`). The HTTP layer turns the errors below into problem+json answers; the batch job writes
them to its errors file.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from app.config import Settings
from app.engine.base import Engine, EngineDeadError, PriceEstimate
from app.ensemble.service import Answer, NoMembersAnswered, OtherAdapter
from app.model.items import Item
from app.pricing.text import has_words, item_text, raw_size
from app.model.spec import text_ceiling

# Building the item text of a batch this large (characters) goes to a worker thread.
OFF_LOOP_CHARS = 50_000


class PricingError(Exception):
    """An item (or a whole call) that cannot be priced; the message says why."""


class NothingToPrice(PricingError):
    """Items whose text has no words or numbers once cleaned (`indices` into the call's items)."""

    def __init__(self, indices: list[int]):
        super().__init__(f"items {indices[:5]}: nothing to price")
        self.indices = indices


class AdapterUnavailable(PricingError):
    def __init__(self, pin: str | None):
        super().__init__(f"adapter {pin!r} cannot serve requests now (rejected or not loadable)")
        self.pin = pin


class NoAnswer(PricingError):
    """Every member failed (the ensemble had nothing to combine)."""


class NoIndex(PricingError):
    """Comparables were asked of a core without an index."""


@dataclass(frozen=True)
class Priced:
    """One item's answer, rounded to cents once, here: what the API answers and the job writes."""

    price: float
    low: float
    high: float
    model: str
    adapter: str | None
    ensemble: str | None
    components: dict[str, float | None] | None
    comparables: list[dict] | None
    currency: str = "USD"
    comparables_below_floor: int | None = None  # of the k asked, how many were too dissimilar to show

    def as_dict(self) -> dict:
        return asdict(self)


def member_item(body, text: str) -> Item:
    """The request as an item for the saved members: the same text the LLM gets (its first line is
    the title, as in curated items), the category, and the details as curated items hold them."""
    title = text.partition("\n")[0].strip() or (body.title or "").strip() or "item"
    details = json.dumps(body.details) if body.details else None
    return Item(title=title, category=body.category, price=1.0, text=text, details=details)


def _passthrough() -> tuple[type[BaseException], ...]:
    from app.adapters.manager import AdapterUnavailableError, UnknownAdapterError

    # The caller's mistakes (an unknown or rejected pin) and a dead engine keep their own answers.
    return (PricingError, EngineDeadError, UnknownAdapterError, AdapterUnavailableError)


class PricingCore:
    """The serving stack's answer: settings, the engine, the adapter manager, the ensemble (None:
    the LLM alone answers) and the comparables index (None: none)."""

    def __init__(self, settings: Settings, engine: Engine, adapters, model_label: str | None = None,
                 ensemble=None, comparables=None):
        self.settings = settings
        self.engine = engine
        self.adapters = adapters
        self.model = model_label or engine.model_name
        self.ensemble = ensemble  # app.ensemble.service.EnsembleService
        self.comparables = comparables  # app.index.service.ComparablesService
        self.member_seconds: dict[str, float] = {}  # each member's wall time over this core's calls

    def texts_now(self, items: Sequence) -> list[str]:
        ceiling = text_ceiling(self.settings)
        return [item_text(item, ceiling) for item in items]

    async def texts(self, items: Sequence) -> list[str]:
        """Item texts in order (a big batch built off the event loop); NothingToPrice names the
        items with no words or numbers left once cleaned."""
        if sum(raw_size(item) for item in items) > OFF_LOOP_CHARS:
            texts = await asyncio.to_thread(self.texts_now, items)
        else:
            texts = self.texts_now(items)
        empty = [i for i, text in enumerate(texts) if not has_words(text)]
        if empty:
            raise NothingToPrice(empty)
        return texts

    async def llm(self, texts: Sequence[str], pin: str | None, only: str | None = None) -> tuple[list[PriceEstimate], str | None]:
        """Price texts with one adapter version (the pinned one, else the active one), leased for
        the call. `only`: the ensemble's fitted version; another one leased raises OtherAdapter
        before the engine runs (its answer would be unused)."""
        from app.adapters.manager import AdapterUnavailableError

        try:
            async with self.adapters.lease(pin) as ref:
                leased = ref.label if ref is not None else None
                if only is not None and leased != only:
                    raise OtherAdapter(leased)
                estimates = await self.engine.estimate(texts, ref)
        except AdapterUnavailableError:
            raise AdapterUnavailable(pin) from None
        return estimates, (ref.label if ref is not None else None)

    async def answer(self, bodies: Sequence, texts: Sequence[str], pin: str | None) -> list[Answer]:
        """The ensemble's answers when one is loaded (the LLM one member), else the LLM's own."""
        if self.ensemble is None:
            started = time.perf_counter()
            estimates, label = await self.llm(texts, pin)
            self._count({"llm": time.perf_counter() - started})
            return [Answer(e.price, e.low, e.high, label) for e in estimates]
        items = [member_item(body, text) for body, text in zip(bodies, texts, strict=True)]
        try:
            answers = await self.ensemble.answer(items, lambda only=None: self.llm(texts, pin, only), _passthrough())
        except NoMembersAnswered as e:
            raise NoAnswer(str(e)) from None
        self._count(answers[0].seconds if answers else None)
        return answers

    def _count(self, seconds: dict[str, float] | None) -> None:
        for member, value in (seconds or {}).items():
            self.member_seconds[member] = self.member_seconds.get(member, 0.0) + value

    def require_index(self, bodies: Sequence) -> None:
        """Before any work: comparables asked of a core without an index."""
        if self.comparables is None and any(body.comparables for body in bodies):
            raise NoIndex("no index of priced items (build one with `pricer index build --data ...`)")

    async def found(self, bodies: Sequence, texts: Sequence[str]) -> list[tuple[list, int] | None]:
        """Per item, when it asked for k > 0: (its comparables at or above the similarity floor
        PRICER_COMPARABLES_MIN_SIMILARITY, how many of the k were below it); else None. One
        embedding batch per k."""
        found: list[tuple[list, int] | None] = [None] * len(bodies)
        by_k: dict[int, list[int]] = {}
        for index, body in enumerate(bodies):
            if body.comparables:
                by_k.setdefault(body.comparables, []).append(index)
        if not by_k:
            return found
        self.require_index(bodies)
        floor = self.settings.comparables_min_similarity
        for k, indices in by_k.items():
            results = await self.comparables.alookup_many([texts[i] for i in indices], k)
            for index, result in zip(indices, results, strict=True):
                shown = [c.model_dump() for c in result if c.similarity >= floor]
                found[index] = (shown, len(result) - len(shown))
        return found

    def priced(self, answer: Answer, found: tuple[list, int] | None) -> Priced:
        """The one place an answer is rounded and labelled (`ensemble`/`components` only when the
        ensemble answered, `comparables` only when asked)."""
        label = self.ensemble.label if self.ensemble is not None else None
        return Priced(
            price=round(answer.price, 2), low=round(answer.low, 2), high=round(answer.high, 2),
            model=self.model, adapter=answer.adapter,
            ensemble=label if answer.components is not None else None,
            components=answer.components, comparables=None if found is None else found[0],
            comparables_below_floor=None if found is None else found[1],
        )

    async def price_one(self, body) -> Priced:
        self.require_index([body])
        [text] = await self.texts([body])
        [result], [found] = await asyncio.gather(self.answer([body], [text], body.adapter), self.found([body], [text]))
        return self.priced(result, found)

    async def price_many(self, bodies: Sequence, texts: Sequence[str] | None = None) -> list[Priced]:
        """Answers in order. Items may pin different adapters: one engine call per adapter."""
        self.require_index(bodies)
        texts = list(texts) if texts is not None else await self.texts(bodies)
        groups: dict[str | None, list[int]] = {}
        for index, body in enumerate(bodies):
            groups.setdefault(body.adapter, []).append(index)
        found, *results = await asyncio.gather(
            self.found(bodies, texts),
            *(self.answer([bodies[i] for i in idx], [texts[i] for i in idx], pin) for pin, idx in groups.items()))
        out: list[Priced | None] = [None] * len(texts)
        for indices, group in zip(groups.values(), results, strict=True):
            for index, result in zip(indices, group, strict=True):
                out[index] = self.priced(result, found[index])
        return out
