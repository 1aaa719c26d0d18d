"""The adapter admin API (PRICER_ADMIN_KEY): list, rescan, activate (also how to roll back), unload.
The manager's errors become problem+json through the service's handlers: unknown version -> 404,
rejected or unloadable -> 409 (with the reason: this API is for operators)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.adapters.manager import AdapterManager
from app.api.deps import AdaptersDep, require_admin_key
from app.api.openapi import problem_responses

router = APIRouter(
    prefix="/v1/adapters",
    tags=["adapters"],
    dependencies=[Depends(require_admin_key)],
    responses=problem_responses({401: "Missing or wrong admin key", 503: "Model loading"}),
)


def _listing(manager: AdapterManager) -> dict:
    active = manager.active
    return {
        "active": active.label if active else None,
        "policy": manager.settings.adapter_policy,
        "adapters": manager.snapshot(),
    }


@router.get("", summary="Every adapter version in the store with its status and validation scores")
async def list_adapters(adapters: AdaptersDep) -> dict:
    return _listing(adapters)


@router.post("/rescan", summary="Scan the store now (the watcher does this on file events)")
async def rescan(adapters: AdaptersDep) -> dict:
    await adapters.rescan()
    return _listing(adapters)


@router.post(
    "/{name}/{version}/activate",
    summary="Make this version serve requests that pin no version (also how to roll back)",
    responses=problem_responses({404: "No such version", 409: "Rejected, changed since validation, or cannot be loaded"}),
)
async def activate(name: str, version: str, adapters: AdaptersDep) -> dict:
    row = await adapters.activate(name, version)
    return {"active": adapters.active.label if adapters.active else None, "adapter": row}


@router.delete(
    "/{name}/{version}",
    summary="Unload this version from the engine (not the active one); the files stay in the store",
    responses=problem_responses({404: "No such version", 409: "It is the active version"}),
)
async def unload(name: str, version: str, adapters: AdaptersDep) -> dict:
    await adapters.unload(name, version)
    return {"unloaded": f"{name}@{version}"}
