"""Estimates without HTTP routing: the pricing core (app/pricing/core.py) behind the API's limits,
errors and metrics.

Routes (app/api/routes/estimate.py) only parse the body and call `EstimateService`; tests can drive
it directly. The answer itself (ensemble, LLM member, comparables, point and interval, rounding) is
`PricingCore`'s, the same one the batch job (`pricer price`) calls; here it only becomes an
`EstimateResponse` with the request id, and the core's errors become problem+json answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from app.api import metrics
from app.api.errors import ProblemError
from app.api.request_context import current_request_id
from app.api.schemas import BatchResponse, EstimateRequest, EstimateResponse
from app.config import Settings
from app.engine.base import Engine
from app.pricing.core import AdapterUnavailable, NoAnswer, NoIndex, NothingToPrice, Priced, PricingCore
from app.pricing.text import NOTHING_TO_PRICE


def no_index_problem() -> ProblemError:
    return ProblemError(409, "Comparables unavailable", "this service has no index of priced items (build one with "
                        "`pricer index build --data ...`, then restart); ask with comparables=0", type="comparables-unavailable")


@contextmanager
def problems(count: int, pin: str | None = None):
    """The core's errors as the API's answers (422, 409, 503)."""
    try:
        yield
    except NothingToPrice as e:
        where = "the item" if count == 1 else ", ".join(f"items[{i}]" for i in e.indices[:5])
        raise ProblemError(422, "Invalid request", f"{where}: {NOTHING_TO_PRICE}", type="invalid-request",
                           errors=[{"field": "title", "message": "nothing to price"}]) from None
    except AdapterUnavailable as e:
        # The reason (paths, checks) is for operators: GET /v1/adapters (admin key) shows it.
        raise ProblemError(409, "Adapter unavailable",
                           f"adapter {e.pin!r} cannot serve requests now (rejected or not loadable); pin another or none",
                           type="adapter-unavailable") from None
    except NoIndex:
        raise no_index_problem() from None
    except NoAnswer as e:
        raise ProblemError(503, "No estimate", f"{e}; retry later", type="no-estimate", headers={"Retry-After": "5"}) from None


def build_response(priced: Priced, request_id: str | None, floor: float = 0.0) -> EstimateResponse:
    """The one place a priced item becomes an API answer."""
    metrics.ESTIMATE_DOLLARS.observe(priced.price)
    fields = priced.as_dict()
    fields.pop("currency")
    hidden = fields.pop("comparables_below_floor")
    if hidden:
        fields["comparables_note"] = (
            f"{hidden} of the {hidden + len(priced.comparables)} most similar indexed items are below the similarity "
            f"floor of {floor:g} (PRICER_COMPARABLES_MIN_SIMILARITY) and not shown")
    return EstimateResponse(**fields, request_id=request_id or "")


class EstimateService:
    """One request's view of the serving stack: the pricing core and the API's batch limit."""

    def __init__(self, settings: Settings, engine: Engine, adapters, model_label: str | None = None,
                 ensemble=None, comparables=None):
        self.settings = settings
        self.core = PricingCore(settings, engine, adapters, model_label, ensemble, comparables)

    async def estimate(self, body: EstimateRequest) -> EstimateResponse:
        with problems(1):
            priced = await self.core.price_one(body)
        return build_response(priced, current_request_id(), self.settings.comparables_min_similarity)

    async def estimate_batch(self, items: Sequence[EstimateRequest]) -> BatchResponse:
        limit = self.settings.max_batch
        if len(items) > limit:
            raise ProblemError(413, "Batch too large", f"the batch has {len(items)} items, over the limit of {limit} "
                               "(PRICER_MAX_BATCH); split it", type="batch-too-large")
        metrics.BATCH_ITEMS.observe(len(items))
        with problems(len(items)):
            priced = await self.core.price_many(items)
        request_id = current_request_id()
        return BatchResponse(estimates=[build_response(p, request_id, self.settings.comparables_min_similarity) for p in priced])
