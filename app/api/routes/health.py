"""Probes and metrics: /healthz (the process lives), /readyz (the engine is up, warmed and
healthy), /metrics (prometheus-client's default registry: ours and vLLM's vllm:*). The probes answer
GET and HEAD."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.responses import JSONResponse, Response

from app.api import metrics
from app.api.deps import LifecycleDep
from app.api.errors import problem_response
from app.api.openapi import problem_responses
from app.engine.base import EngineError

router = APIRouter(tags=["operations"])


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", summary="The process lives")
async def healthz() -> dict:
    return {"status": "ok"}


@router.head("/readyz", include_in_schema=False)
@router.get("/readyz", summary="The engine is started, warmed and healthy", responses=problem_responses({503: "Not ready"}))
async def readyz(lifecycle: LifecycleDep, request: Request) -> Response:
    if not lifecycle.ready:
        detail = lifecycle.not_ready_reason()
        return problem_response(503, "Not ready", detail, type="not-ready", headers={"Retry-After": "5"})
    engine = lifecycle.engine
    try:
        await engine.check_health()
    except EngineError as e:
        lifecycle.engine_dead(e)
        return problem_response(503, "Not ready", f"the inference engine is dead: {e}", type="not-ready")
    if not engine.ready:
        return problem_response(503, "Not ready", "the inference engine is not ready", type="not-ready")
    active = lifecycle.adapters.active
    fleet = lifecycle.fleet
    from app.model.hardware import compute_block

    return JSONResponse({"status": "ready", "model": engine.model_name, "adapter": active.label if active else None,
                         "compute": compute_block(lifecycle.settings),
                         "admission": request.app.state.admission.state(),
                         # still ready while it lags: it serves its own version and says why it does not follow
                         "ensemble": lifecycle.ensembles.active_label if lifecycle.ensembles is not None else None,
                         "desired_state": fleet.status() if fleet is not None else None})


@router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
async def metrics_endpoint(lifecycle: LifecycleDep) -> Response:
    if lifecycle.ready:
        active = lifecycle.adapters.active
        metrics.set_model_info(lifecycle.engine.model_name, active.label if active else None)
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
