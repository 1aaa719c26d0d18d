"""Bearer keys, checked before anything else: `Authorization: Bearer <key>`, compared in constant time.

An unset PRICER_API_KEY means estimates need no key. An unset PRICER_ADMIN_KEY does not open the
admin routes: they fail closed and answer only a client on loopback of a service bound to loopback
(`make serve`'s default), since whoever reaches them can switch what every replica serves and list
every replica's address. The service middleware calls `access_problem` on the request headers before
it reads a body or takes an in-flight slot, so a refused client costs no work; the route dependencies
in deps.py call it again (and give the OpenAPI its bearer security scheme).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from app.api.errors import ProblemError

ADMIN_PREFIX = "/v1/adapters"
ADMIN_PREFIXES = (ADMIN_PREFIX, "/v1/ensembles", "/v1/fleet")  # adapter and ensemble admin, the fleet view
API_PREFIX = "/v1/"
ADMIN_REALM = "pricer-admin"
# A request that carries one of these came through a proxy: its peer address is not its client's.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def secret_bytes(value) -> bytes | None:
    """A SecretStr setting as bytes; unset or empty: None (no key needed)."""
    return value.get_secret_value().encode() if value is not None and value.get_secret_value() else None


def realm_for(path: str) -> str | None:
    """Which key a path needs: "pricer-admin" for admin, "pricer" for estimates, None else."""
    if any(path == prefix or path.startswith(prefix + "/") for prefix in ADMIN_PREFIXES):
        return ADMIN_REALM
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


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or "localhost"; a wildcard bind (0.0.0.0, ::) is not."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def keyless_admin_problem(client_host: str | None, bind_host: str | None, forwarded: bool) -> ProblemError | None:
    """Without PRICER_ADMIN_KEY: None for a loopback client of a loopback-bound service that no proxy
    relayed; else the 403 that says how to open the admin routes."""
    if is_loopback(bind_host) and is_loopback(client_host) and not forwarded:
        return None
    return ProblemError(
        403, "Admin key required",
        "PRICER_ADMIN_KEY is unset, so the admin routes answer only clients on this machine of a service bound to "
        "127.0.0.1; set PRICER_ADMIN_KEY on the service and send it as `Authorization: Bearer <key>` "
        "(docs/operations.md, Security)",
        type="admin-key-required",
    )


def access_problem(realm: str, authorization: str | None, expected: bytes | None, client_host: str | None,
                   bind_host: str | None, forwarded: bool) -> ProblemError | None:
    """None when the request may go on; else the problem to answer (key_problem, or keyless_admin_problem
    for an admin route without an admin key)."""
    if realm == ADMIN_REALM and expected is None:
        return keyless_admin_problem(client_host, bind_host, forwarded)
    return key_problem(authorization, expected, realm)


def client_identity(authorization: str | None, client_host: str | None) -> str:
    """Whom an in-flight slot is counted against: the key (hashed) and the address it comes from."""
    token = bearer_token(authorization) or ""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16] if token else "-"
    return f"{digest}@{client_host or '?'}"
