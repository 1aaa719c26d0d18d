"""Estimates without HTTP: item text, batching by adapter, leasing, the engine call, the response.

Routes (app/api/routes/estimate.py) only parse the body and call `EstimateService`; tests can drive
it directly. Every estimate the API answers is built by `build_response`, the one place where a new
answer field (comparables, ensemble components) is added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.api import answers, metrics
from app.api.errors import ProblemError
from app.api.request_context import current_request_id
from app.api.sanitize import strip_answer_cues
from app.api.schemas import BatchResponse, EstimateRequest, EstimateResponse
from app.config import Settings
from app.engine.base import Engine, PriceEstimate
from app.items import compose_contents, compose_text, details_inside
from app.spec import text_ceiling

# Building the item text of a batch this large (characters) goes to a worker thread.
OFF_LOOP_CHARS = 50_000


def item_text(body: EstimateRequest, ceiling: int) -> str:
    """The text the model is asked about: curation's composition, answer cues taken out, cut to
    `ceiling` characters (app.spec.text_ceiling: the cutter's own cheap pre-cut; the engine then
    cuts it to the exact token budget with the serving spec)."""
    # details already inside the description (a curated text sent back) are not appended twice
    details = None if details_inside(body.description or "", body.details) else body.details
    contents = strip_answer_cues(compose_contents(body.description, body.features, details)[:ceiling])
    title = strip_answer_cues((body.title or "")[:ceiling])
    return compose_text(title, contents, ceiling_chars=ceiling).strip("\n")


def _raw_size(body: EstimateRequest) -> int:
    size = len(body.title or "") + len(body.description or "")
    size += sum(len(f) for f in body.features or ())
    return size + sum(len(k) + len(str(v)) for k, v in (body.details or {}).items())


def build_response(estimate: PriceEstimate, model: str, adapter: str | None, request_id: str | None, *,
                   ensemble: str | None = None, components: dict | None = None,
                   comparables: list | None = None) -> EstimateResponse:
    """The one place an estimate becomes an API answer (`ensemble`/`components` when the ensemble
    answered, `comparables` when asked)."""
    metrics.ESTIMATE_DOLLARS.observe(estimate.price)
    return EstimateResponse(
        price=round(estimate.price, 2), low=round(estimate.low, 2), high=round(estimate.high, 2),
        model=model, adapter=adapter, request_id=request_id or "",
        ensemble=ensemble if components is not None else None, components=components, comparables=comparables,
    )


class EstimateService:
    """One request's view of the serving stack: settings, the engine and the adapter manager."""

    def __init__(self, settings: Settings, engine: Engine, adapters, model_label: str | None = None,
                 ensemble=None, comparables=None):
        self.settings = settings
        self.engine = engine
        self.adapters = adapters
        self.model = model_label or engine.model_name
        self.ensemble = ensemble  # app.ensemble.service.EnsembleService, None: the LLM alone answers
        self.comparables = comparables  # app.index.service.ComparablesService, None: no index

    async def texts(self, items: Sequence[EstimateRequest]) -> list[str]:
        """Item texts in order; a big batch is built off the event loop. An item with nothing left
        to price once cleaned is the client's mistake (422)."""
        ceiling = text_ceiling(self.settings)
        if sum(_raw_size(item) for item in items) > OFF_LOOP_CHARS:
            texts = await asyncio.to_thread(lambda: [item_text(item, ceiling) for item in items])
        else:
            texts = [item_text(item, ceiling) for item in items]
        empty = [i for i, text in enumerate(texts) if not any(c.isalnum() for c in text)]
        if empty:
            where = "the item" if len(items) == 1 else ", ".join(f"items[{i}]" for i in empty[:5])
            raise ProblemError(
                422, "Invalid request",
                f"{where}: no words or numbers left once punctuation is removed; send a real title or description",
                type="invalid-request", errors=[{"field": "title", "message": "nothing to price"}],
            )
        return texts

    async def price(self, texts: Sequence[str], pin: str | None, only: str | None = None) -> tuple[list[PriceEstimate], str | None]:
        """Price texts with one adapter version (the pinned one, else the active one), leased for
        the call so that a swap never unloads it underneath. `only`: the ensemble's fitted version;
        another one leased raises OtherAdapter before the engine runs (its answer would be unused)."""
        from app.adapters.manager import AdapterUnavailableError
        from app.ensemble.service import OtherAdapter

        try:
            async with self.adapters.lease(pin) as ref:
                leased = ref.label if ref is not None else None
                if only is not None and leased != only:
                    raise OtherAdapter(leased)
                estimates = await self.engine.estimate(texts, ref)
        except AdapterUnavailableError:
            # The reason (paths, checks) is for operators: GET /v1/adapters (admin key) shows it.
            raise ProblemError(
                409, "Adapter unavailable",
                f"adapter {pin!r} cannot serve requests now (rejected or not loadable); pin another or none",
                type="adapter-unavailable",
            ) from None
        return estimates, (ref.label if ref is not None else None)

    async def answer(self, bodies: Sequence[EstimateRequest], texts: Sequence[str], pin: str | None) -> list:
        """The served answers (app.api.answers: the ensemble's, the LLM one member, or the LLM's)."""
        return await answers.answer(self.ensemble, bodies, texts, lambda only=None: self.price(texts, pin, only))

    def respond(self, answer, found: list | None, request_id: str | None) -> EstimateResponse:
        label = self.ensemble.label if self.ensemble is not None else None
        return build_response(answer, self.model, answer.adapter, request_id, ensemble=label,
                              components=answer.components, comparables=found)

    async def estimate(self, body: EstimateRequest) -> EstimateResponse:
        answers.require_index(self.comparables, [body])
        [text] = await self.texts([body])
        [result], [found] = await asyncio.gather(
            self.answer([body], [text], body.adapter), answers.comparables(self.comparables, [body], [text]))
        return self.respond(result, found, current_request_id())

    async def estimate_batch(self, items: Sequence[EstimateRequest]) -> BatchResponse:
        limit = self.settings.max_batch
        if len(items) > limit:
            raise ProblemError(
                413, "Batch too large", f"the batch has {len(items)} items, over the limit of {limit} (PRICER_MAX_BATCH); split it",
                type="batch-too-large",
            )
        metrics.BATCH_ITEMS.observe(len(items))
        answers.require_index(self.comparables, items)
        texts = await self.texts(items)
        # Items may pin different adapters: one engine call per adapter, answers put back in order.
        groups: dict[str | None, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.adapter, []).append(index)
        found, *results = await asyncio.gather(
            answers.comparables(self.comparables, items, texts),
            *(self.answer([items[i] for i in idx], [texts[i] for i in idx], pin) for pin, idx in groups.items()))
        request_id = current_request_id()
        out: list[EstimateResponse | None] = [None] * len(texts)
        for indices, group in zip(groups.values(), results, strict=True):
            for index, result in zip(indices, group, strict=True):
                out[index] = self.respond(result, found[index], request_id)
        return BatchResponse(estimates=out)
