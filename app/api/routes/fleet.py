"""GET /v1/fleet (admin key: it lists every replica's host and address): every replica sharing this
store (a fresh heartbeat), what it serves, and whether it has converged on the desired state; the
same on any replica."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from app.api.deps import LifecycleDep, require_admin_key
from app.api.openapi import ADMIN_PROBLEMS, problem_responses
from app.fleet import view

router = APIRouter(
    prefix="/v1/fleet",
    tags=["operations"],
    dependencies=[Depends(require_admin_key)],
    responses=problem_responses(ADMIN_PROBLEMS),
)


@router.get("", summary="Every replica sharing the store, its adapter and ensemble versions, and whether it has converged")
async def fleet(lifecycle: LifecycleDep) -> dict:
    settings = lifecycle.settings
    return await asyncio.to_thread(view.fleet, settings.models_dir, settings.fleet_stale_s)
