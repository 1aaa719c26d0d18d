"""POST /v1/estimate and POST /v1/estimate/batch: thin HTTP over app.api.serving.EstimateService
(item text, batching by adapter, leasing, the engine call and the answer live there)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import EstimateServiceDep, require_api_key, require_ready
from app.api.openapi import problem_responses
from app.api.schemas import BatchRequest, BatchResponse, EstimateRequest, EstimateResponse

router = APIRouter(
    prefix="/v1",
    tags=["estimates"],
    dependencies=[Depends(require_api_key), Depends(require_ready)],
    responses=problem_responses({
        401: "Missing or wrong API key",
        404: "Unknown adapter",
        408: "The body was not sent in time (PRICER_BODY_TIMEOUT_S)",
        409: "Adapter rejected or cannot be loaded",
        413: "Body or batch too large",
        422: "Invalid body (the detail names the field)",
        429: "Too many requests in flight (see Retry-After)",
        503: "Model loading or engine failure (see Retry-After)",
    }),
)


@router.post("/estimate", summary="Estimate one product's price")
async def estimate(body: EstimateRequest, service: EstimateServiceDep) -> EstimateResponse:
    return await service.estimate(body)


@router.post("/estimate/batch", summary="Estimate several products' prices, answered in order")
async def estimate_batch(body: BatchRequest, service: EstimateServiceDep) -> BatchResponse:
    return await service.estimate_batch(body.items)
