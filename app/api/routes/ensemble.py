"""GET /v1/ensemble: what answers estimates: the bundle ("name@version") and its members, loaded or
missing and why (a member fails its check, cannot load, or its index was never built here), the
comparables index; or, with no bundle (or PRICER_ESTIMATOR=llm), that the LLM alone answers and why.
`promotion`: the bundle's promotion record (`pricer build`, app.build.promote: measured against the
bundle active before it, the rule, promoted or not and why), null when it has none."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import LifecycleDep, require_api_key, require_ready
from app.api.openapi import problem_responses

router = APIRouter(
    prefix="/v1",
    tags=["estimates"],
    dependencies=[Depends(require_api_key), Depends(require_ready)],
    responses=problem_responses({401: "Missing or wrong API key", 503: "Model loading"}),
)


@router.get("/ensemble", summary="The ensemble bundle and members that answer, and those missing with the reason")
async def ensemble(lifecycle: LifecycleDep) -> dict:
    return lifecycle.extras.describe()
