"""Bearer keys, checked before anything else: `Authorization: Bearer <key>`, compared in constant time.

An unset key (PRICER_API_KEY / PRICER_ADMIN_KEY) means none is needed for that group of routes. The
service middleware calls `key_problem` on the request headers before it reads a body or takes an
in-flight slot, so a client without the key costs no work; the route dependencies in deps.py call
it again (and give the OpenAPI its bearer security scheme).
"""

from __future__ import annotations

import hashlib
import hmac

from app.api.errors import ProblemError

ADMIN_PREFIX = "/v1/adapters"
ADMIN_PREFIXES = (ADMIN_PREFIX, "/v1/ensembles", "/v1/fleet")  # adapter and ensemble admin, the fleet view
API_PREFIX = "/v1/"


def secret_bytes(value) -> bytes | None:
    """A SecretStr setting as bytes; unset or empty: None (no key needed)."""
    return value.get_secret_value().encode() if value is not None and value.get_secret_value() else None


def realm_for(path: str) -> str | None:
    """Which key a path needs: "pricer-admin" for admin, "pricer" for estimates, None else."""
    if any(path == prefix or path.startswith(prefix + "/") for prefix in ADMIN_PREFIXES):
        return "pricer-admin"
    if path.startswith(API_PREFIX):
        return "pricer"
    return None


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def key_problem(authorization: str | None, expected: bytes | None, realm: str) -> ProblemError | None:
    """None when the request may go on; else the 401 to answer."""
    if expected is None:
        return None
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    token = bearer_token(authorization)
    if token is None:
        return ProblemError(
            401, "Unauthorized", f"send the {realm} key as `Authorization: Bearer <key>`",
            type="unauthorized", headers=challenge,
        )
    if not hmac.compare_digest(token.encode(), expected):
        return ProblemError(401, "Unauthorized", f"the {realm} key is wrong", type="unauthorized", headers=challenge)
    return None


def client_identity(authorization: str | None, client_host: str | None) -> str:
    """Whom an in-flight slot is counted against: the key (hashed) and the address it comes from."""
    token = bearer_token(authorization) or ""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16] if token else "-"
    return f"{digest}@{client_host or '?'}"
