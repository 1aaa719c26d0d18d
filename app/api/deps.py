"""What routes need, as typed FastAPI dependencies (`Annotated` aliases): every route states what it
uses, and tests can override any of them (`app.dependency_overrides[get_engine] = ...`).

Only this module reads `app.state`; routes never do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.adapters.manager import AdapterManager
from app.api.auth import ADMIN_REALM, FORWARDING_HEADERS, access_problem, key_problem
from app.api.errors import ProblemError
from app.api.lifecycle import Lifecycle
from app.api.serving import EstimateService
from app.config import Settings
from app.engine.base import Engine

# Declares the bearer scheme in the OpenAPI (Swagger UI's Authorize button). The middleware has
# already refused a wrong key before the body was read; the check here is the route's own guarantee.
bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>` (PRICER_API_KEY / PRICER_ADMIN_KEY)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.lifecycle


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]


async def require_api_key(request: Request, _credentials: Credentials) -> None:
    """For estimate routes (PRICER_API_KEY)."""
    _raise(key_problem(request.headers.get("authorization"), request.app.state.api_key, "pricer"))


async def require_admin_key(request: Request, _credentials: Credentials) -> None:
    """For the admin routes (PRICER_ADMIN_KEY), a key separate from the estimate key; unset: loopback only."""
    forwarded = any(name in request.headers for name in FORWARDING_HEADERS)
    client = request.client.host if request.client else None
    _raise(access_problem(ADMIN_REALM, request.headers.get("authorization"), request.app.state.admin_key, client,
                          request.app.state.settings.host, forwarded))


def _raise(problem: ProblemError | None) -> None:
    if problem is not None:
        raise problem


async def require_ready(lifecycle: LifecycleDep) -> None:
    """503 with Retry-After while the model loads (or after a failed start or the engine's death)."""
    if not lifecycle.ready:
        raise ProblemError(503, "Not ready", lifecycle.not_ready_reason(), type="not-ready", headers={"Retry-After": "5"})


def get_engine(lifecycle: LifecycleDep, _ready: Annotated[None, Depends(require_ready)]) -> Engine:
    return lifecycle.engine


def get_adapters(lifecycle: LifecycleDep, _ready: Annotated[None, Depends(require_ready)]) -> AdapterManager:
    return lifecycle.adapters


EngineDep = Annotated[Engine, Depends(get_engine)]
AdaptersDep = Annotated[AdapterManager, Depends(get_adapters)]


def get_estimate_service(settings: SettingsDep, engine: EngineDep, adapters: AdaptersDep,
                         lifecycle: LifecycleDep) -> EstimateService:
    extras = lifecycle.extras
    return EstimateService(settings, engine, adapters, ensemble=extras and extras.ensemble,
                           comparables=extras and extras.comparables)


EstimateServiceDep = Annotated[EstimateService, Depends(get_estimate_service)]
