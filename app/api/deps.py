"""Authentication: `Authorization: Bearer <key>`, compared in constant time.

An unset key (PRICER_API_KEY / PRICER_ADMIN_KEY) means none is needed for that group of routes.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from app.api.errors import ProblemError


def _check(request: Request, expected: bytes | None, realm: str) -> None:
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(
            401, "Unauthorized", f"send the {realm} key as `Authorization: Bearer <key>`",
            type="unauthorized", headers=challenge,
        )
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise ProblemError(401, "Unauthorized", f"the {realm} key is wrong", type="unauthorized", headers=challenge)


async def require_api_key(request: Request) -> None:
    """For estimate routes (PRICER_API_KEY)."""
    _check(request, request.app.state.api_key, "pricer")


async def require_admin_key(request: Request) -> None:
    """For adapter administration (PRICER_ADMIN_KEY), a key separate from the estimate key."""
    _check(request, request.app.state.admin_key, "pricer-admin")


async def require_ready(request: Request) -> None:
    """503 with Retry-After while the model loads (or after a failed start)."""
    lifecycle = request.app.state.lifecycle
    if not lifecycle.ready:
        raise ProblemError(503, "Not ready", lifecycle.not_ready_reason(), type="not-ready", headers={"Retry-After": "5"})
