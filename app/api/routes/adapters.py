"""Adapter administration (admin key): list versions, activate one (rollback is activating an
older one), unload one, rescan the store now. The manager's errors become problem+json through
the service's handlers: unknown version -> 404, rejected or unloadable -> 409."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.api.deps import require_admin_key

router = APIRouter(prefix="/v1/adapters", tags=["adapters"], dependencies=[Depends(require_admin_key)])


def _listing(request: Request) -> dict:
    manager = request.app.state.adapters
    active = manager.active
    return {
        "active": active.label if active else None,
        "policy": manager.settings.adapter_policy,
        "adapters": manager.snapshot(),
    }


@router.get("", summary="Every adapter version in the store with its status and validation scores")
async def list_adapters(request: Request) -> dict:
    return _listing(request)


@router.post("/rescan", summary="Scan the store now (the watcher does this on file events)")
async def rescan(request: Request) -> dict:
    await request.app.state.adapters.rescan()
    return _listing(request)


@router.post(
    "/{name}/{version}/activate",
    summary="Make this version serve requests that pin no version (also how to roll back)",
    responses={404: {"description": "No such version"}, 409: {"description": "Rejected or cannot be loaded"}},
)
async def activate(name: str, version: str, request: Request) -> dict:
    manager = request.app.state.adapters
    row = await manager.activate(name, version)
    return {"active": manager.active.label if manager.active else None, "adapter": row}


@router.delete(
    "/{name}/{version}",
    summary="Unload this version from the engine (not the active one); the files stay in the store",
    responses={404: {"description": "No such version"}, 409: {"description": "It is the active version"}},
)
async def unload(name: str, version: str, request: Request) -> dict:
    await request.app.state.adapters.unload(name, version)
    return {"unloaded": f"{name}@{version}"}
