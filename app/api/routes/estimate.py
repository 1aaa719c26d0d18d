"""POST /v1/estimate and POST /v1/estimate/batch.

The hot path: build the item text (same functions as curation), lease the adapter version, ask
the engine, answer. Nothing here blocks the event loop: the engine is async and does its own
tokenizing and cutting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request

from app.api import metrics
from app.api.deps import require_api_key, require_ready
from app.api.errors import ProblemError
from app.api.request_context import current_request_id
from app.api.schemas import BatchRequest, BatchResponse, EstimateRequest, EstimateResponse, Problem
from app.engine.base import PriceEstimate

_ERRORS = {
    code: {"model": Problem, "content": {"application/problem+json": {}}, "description": why}
    for code, why in {
        401: "Missing or wrong API key",
        404: "Unknown adapter",
        409: "Adapter rejected or cannot be loaded",
        413: "Body or batch too large",
        422: "Invalid body (the detail names the field)",
        429: "Too many requests in flight (see Retry-After)",
        503: "Model loading or engine failure (see Retry-After)",
    }.items()
}

router = APIRouter(prefix="/v1", tags=["estimates"], dependencies=[Depends(require_api_key), Depends(require_ready)], responses=_ERRORS)


async def _estimate(request: Request, texts: Sequence[str], adapter: str | None) -> tuple[list[PriceEstimate], str | None]:
    engine = request.app.state.engine
    async with request.app.state.adapters.lease(adapter) as ref:
        estimates = await engine.estimate(texts, ref)
    return estimates, (ref.label if ref is not None else None)


def _response(estimate: PriceEstimate, model: str, adapter: str | None, request_id: str) -> EstimateResponse:
    metrics.ESTIMATE_DOLLARS.observe(estimate.price)
    return EstimateResponse(
        price=round(estimate.price, 2), low=round(estimate.low, 2), high=round(estimate.high, 2),
        model=model, adapter=adapter, request_id=request_id,
    )


@router.post("/estimate", summary="Estimate one product's price")
async def estimate(body: EstimateRequest, request: Request) -> EstimateResponse:
    text = body.item_text(request.app.state.settings.prompt_token_budget)
    [result], label = await _estimate(request, [text], body.adapter)
    return _response(result, request.app.state.engine.model_name, label, current_request_id())


@router.post("/estimate/batch", summary="Estimate several products' prices, answered in order")
async def estimate_batch(body: BatchRequest, request: Request) -> BatchResponse:
    limit = request.app.state.settings.max_batch
    if len(body.items) > limit:
        raise ProblemError(
            413, "Batch too large", f"the batch has {len(body.items)} items, over the limit of {limit} (PRICER_MAX_BATCH); split it",
            type="batch-too-large",
        )
    metrics.BATCH_ITEMS.observe(len(body.items))
    budget = request.app.state.settings.prompt_token_budget
    # Items may pin different adapters: one engine call per adapter, answers put back in order.
    groups: dict[str | None, list[int]] = {}
    for index, item in enumerate(body.items):
        groups.setdefault(item.adapter, []).append(index)
    texts = [item.item_text(budget) for item in body.items]
    results = await asyncio.gather(*(_estimate(request, [texts[i] for i in idx], pin) for pin, idx in groups.items()))
    model, request_id = request.app.state.engine.model_name, current_request_id()
    answers: list[EstimateResponse | None] = [None] * len(texts)
    for (_, indices), (estimates, label) in zip(groups.items(), results, strict=True):
        for index, result in zip(indices, estimates, strict=True):
            answers[index] = _response(result, model, label, request_id)
    return BatchResponse(estimates=answers)
