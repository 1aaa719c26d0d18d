"""The ensemble admin API (PRICER_ADMIN_KEY): every bundle version in the store with its status, and
activation (also how to roll back), written to the desired state that every replica follows.
GET /v1/ensemble (estimate key) says which bundle and members answer on this replica."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import LifecycleDep, require_admin_key, require_ready
from app.api.errors import ProblemError
from app.api.openapi import ADMIN_PROBLEMS, problem_responses
from app.api.routes.desired import IfGeneration, Wait, WaitTimeout, answer, desired_problems
from app.ensemble.manager import EnsembleRefusedError, UnknownEnsembleError

router = APIRouter(
    prefix="/v1/ensembles",
    tags=["ensembles"],
    dependencies=[Depends(require_admin_key), Depends(require_ready)],
    responses=problem_responses({**ADMIN_PROBLEMS, 503: "Model loading"}),
)


@router.get("", summary="Every ensemble bundle version in the store: active, available or refused (and why)")
async def list_ensembles(lifecycle: LifecycleDep) -> dict:
    return lifecycle.ensembles.describe()


@router.post(
    "/{name}/{version}/activate",
    summary="Validate this bundle version (every member loads and warms up), make it answer on every replica (also how to roll back)",
    responses=problem_responses({404: "No such version", 409: "Refused here (the reason), or a generation conflict",
                                 503: "The desired state cannot be written"}),
)
async def activate(name: str, version: str, lifecycle: LifecycleDep, wait: Wait = False, timeout_s: WaitTimeout = 60.0,
                   if_generation: IfGeneration = None) -> dict:
    try:
        with desired_problems():
            result = await lifecycle.ensembles.activate(name, version, expect_generation=if_generation)
    except UnknownEnsembleError as e:
        raise ProblemError(404, "Unknown ensemble", str(e), type="unknown-ensemble") from None
    except EnsembleRefusedError as e:
        raise ProblemError(409, "Ensemble refused", str(e), type="ensemble-refused") from None
    return await answer(result, lifecycle, wait, timeout_s)
