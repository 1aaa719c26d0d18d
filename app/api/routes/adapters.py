"""The adapter admin API (PRICER_ADMIN_KEY): list, rescan, activate (also how to roll back), unload.
An activation on any replica is written to the desired state in the store, which every replica
follows (app.fleet); it answers with the generation written, and with `?wait=true` once the
replicas it can see serve it. The manager's errors become problem+json through the service's
handlers: unknown version -> 404, rejected or unloadable -> 409 (with the reason: this API is for
operators)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.adapters.manager import AdapterManager
from app.api.deps import AdaptersDep, LifecycleDep, require_admin_key
from app.api.openapi import ADMIN_PROBLEMS, problem_responses
from app.api.routes.desired import IfGeneration, Wait, WaitTimeout, answer, desired_problems

router = APIRouter(
    prefix="/v1/adapters",
    tags=["adapters"],
    dependencies=[Depends(require_admin_key)],
    responses=problem_responses({**ADMIN_PROBLEMS, 503: "Model loading"}),
)


def _listing(manager: AdapterManager, lifecycle) -> dict:
    active, fleet = manager.active, lifecycle.fleet
    return {"active": active.label if active else None, "policy": manager.settings.adapter_policy,
            "desired_state": fleet.status() if fleet is not None else manager.follower.status(), "adapters": manager.snapshot()}


@router.get("", summary="Every adapter version in the store with its status and validation scores")
async def list_adapters(adapters: AdaptersDep, lifecycle: LifecycleDep) -> dict:
    return _listing(adapters, lifecycle)


@router.post("/rescan", summary="Scan the store now (the watcher does this on file events)")
async def rescan(adapters: AdaptersDep, lifecycle: LifecycleDep) -> dict:
    await adapters.rescan()
    return _listing(adapters, lifecycle)


@router.post(
    "/{name}/{version}/activate",
    summary="Make this version serve requests that pin no version, on every replica (also how to roll back)",
    responses=problem_responses({404: "No such version", 409: "Rejected, changed since validation, cannot be loaded, or a generation conflict",
                                 503: "The desired state cannot be written"}),
)
async def activate(name: str, version: str, adapters: AdaptersDep, lifecycle: LifecycleDep, wait: Wait = False,
                   timeout_s: WaitTimeout = 30.0, if_generation: IfGeneration = None) -> dict:
    with desired_problems():
        row = await adapters.activate(name, version, expect_generation=if_generation)
    result = {"active": adapters.active.label if adapters.active else None, "generation": row.pop("generation"), "adapter": row}
    return await answer(result, lifecycle, wait, timeout_s)


@router.delete(
    "/{name}/{version}",
    summary="Unload this version from this replica's engine (not the active one); the files stay in the store",
    responses=problem_responses({404: "No such version", 409: "It is the active version"}),
)
async def unload(name: str, version: str, adapters: AdaptersDep) -> dict:
    await adapters.unload(name, version)
    return {"unloaded": f"{name}@{version}"}
