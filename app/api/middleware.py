"""One pure-ASGI middleware for what every request shares: its id, the key check, the in-flight
limits, the body size and time limits, the request metrics and the access log line.

Order matters: the key is checked on the headers alone, before any body byte is read and before an
in-flight slot is taken, so a client without the key costs nothing and cannot fill the slots. Each
client (its key and address) may hold only a share of the slots (PRICER_MAX_INFLIGHT_PER_CLIENT),
and a body that does not arrive within PRICER_BODY_TIMEOUT_S frees its slot with a 408.

Pure ASGI (not BaseHTTPMiddleware) because it sits on the hot path: no extra task or stream copy
per request. Probes and /metrics are neither limited nor counted as in flight, so an overloaded
service still answers its orchestrator.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import metrics
from app.api.admission import LatencyAdmission
from app.api.auth import FORWARDING_HEADERS, access_problem, client_identity, realm_for
from app.api.errors import PROBLEM_JSON, problem_body
from app.api.request_context import REQUEST_ID_HEADER, accept_request_id, reset_request_id, set_request_id

access_log = logging.getLogger("pricer.access")
log = logging.getLogger(__name__)

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()


class BodyTooLargeError(HTTPException):
    """Raised from `receive` when a streamed body passes the limit. An HTTPException, so FastAPI's
    body reader lets it through to the problem+json handler as a 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over {limit} bytes (PRICER_MAX_BODY_BYTES); send less")


def route_template(scope: Scope) -> str:
    """The matched route's template ("/v1/adapters/{name}/{version}/activate"): bounded label values."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match != Match.NONE:
            return getattr(candidate, "path", "unmatched")
    return "unmatched"


class BodyTimeoutError(HTTPException):
    def __init__(self, timeout_s: float):
        super().__init__(408, f"the request body did not arrive within {timeout_s:g} s (PRICER_BODY_TIMEOUT_S)")


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, max_inflight: int, max_body_bytes: int, keys: dict[str, bytes | None] | None = None,
                 per_client_share: float = 1.0, body_timeout_s: float | None = None, admission: LatencyAdmission | None = None,
                 bind_host: str | None = None):  # bind_host: where the service listens; unknown: keyless admin is refused
        self.app = app
        self.admission = admission or LatencyAdmission(None, max_inflight, max_inflight)
        self.max_inflight = max_inflight
        self.max_per_client = max(1, math.ceil(max_inflight * per_client_share))
        self.max_body_bytes = max_body_bytes
        self.keys = keys or {}  # realm -> expected key (None: no key; the admin realm then loopback only)
        self.bind_host = bind_host
        self.body_timeout_s = body_timeout_s
        self.inflight = 0
        self.by_client: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = accept_request_id(_header(scope, _REQUEST_ID_HEADER_BYTES))
        token = set_request_id(request_id)
        id_header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())
        state = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        limited = scope["path"] not in UNLIMITED_PATHS
        client = client_identity(_text(scope, b"authorization"), (scope.get("client") or (None,))[0])
        try:
            rejection = self._unauthorized(scope) or self._reject(scope, limited, client)
            if rejection is not None:
                await _send_problem(send_with_id, scope, *rejection)
                return
            if limited:
                self.inflight += 1
                ticket = self.admission.enter()
                self.by_client[client] = self.by_client.get(client, 0) + 1
                metrics.INFLIGHT.inc()
            try:
                await self.app(scope, self._limit_body(receive), send_with_id)
            finally:
                if limited:
                    self.admission.leave(ticket, answered=200 <= state["status"] < 300 and scope["method"] == "POST")
                    metrics.ADMISSION_LIMIT.set(self.admission.limit)
                    self.inflight -= 1
                    self.by_client[client] -= 1
                    if not self.by_client[client]:
                        del self.by_client[client]
                    metrics.INFLIGHT.dec()
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not state["started"]:
                await _send_problem(send_with_id, scope, 500, "Internal error",
                                    "an unexpected error occurred; report the request_id", {})
        finally:
            duration = time.perf_counter() - started_at
            route = route_template(scope)
            status = state["status"]
            metrics.REQUESTS.labels(route, str(status)).inc()
            metrics.REQUEST_DURATION.labels(route).observe(duration)
            access_log.info("%s %s %s", scope["method"], route, status,
                            extra={"request_id": request_id, "method": scope["method"], "route": route, "status": status,
                                   "duration_ms": round(duration * 1000, 2)})
            reset_request_id(token)

    def _unauthorized(self, scope: Scope) -> tuple | None:
        realm = realm_for(scope["path"])
        if realm is None:
            return None
        forwarded = any(_header(scope, name.encode()) is not None for name in FORWARDING_HEADERS)
        problem = access_problem(realm, _text(scope, b"authorization"), self.keys.get(realm),
                                 (scope.get("client") or (None,))[0], self.bind_host, forwarded)
        return None if problem is None else (problem.status, problem.title, problem.detail, problem.headers, problem.type)

    def _reject(self, scope: Scope, limited: bool, client: str) -> tuple | None:
        admission = self.admission
        if limited and self.inflight < self.max_inflight and admission.enabled and not admission.admits(self.inflight):
            wait_ms = admission.shed()
            metrics.SHED.inc()
            return (
                429, "Too many requests",
                f"{self.inflight} requests are in flight, as many as this service answers within "
                f"{admission.target_s:g} s at its measured {admission.rate:.2f} requests/s (PRICER_ADMISSION_TARGET_S); "
                f"retry after {wait_ms} ms",
                {"Retry-After": str(max(1, math.ceil(wait_ms / 1000))), "Retry-After-Ms": str(wait_ms)},
            )
        if limited and self.inflight >= self.max_inflight:
            return (
                429, "Too many requests",
                f"{self.inflight} requests are in flight (limit {self.max_inflight}, PRICER_MAX_INFLIGHT); retry after a second",
                {"Retry-After": "1", "Retry-After-Ms": "1000"},
            )
        if limited and self.by_client.get(client, 0) >= self.max_per_client:
            return (
                429, "Too many requests",
                f"this client has {self.max_per_client} requests in flight, its share of the {self.max_inflight} slots "
                "(PRICER_MAX_INFLIGHT_PER_CLIENT); retry after a second",
                {"Retry-After": "1", "Retry-After-Ms": "1000"},
            )
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body_bytes
            except ValueError:
                return (400, "Bad request", "the Content-Length header is not a number", {})
            if too_large:
                return (
                    413, "Payload too large",
                    f"the request body is {int(length)} bytes, over the limit of {self.max_body_bytes} (PRICER_MAX_BODY_BYTES)",
                    {},
                )
        return None

    def _limit_body(self, receive: Receive) -> Receive:
        limit, timeout_s = self.max_body_bytes, self.body_timeout_s
        seen, complete = 0, False
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        async def limited_receive() -> Message:
            nonlocal seen, complete
            if complete or deadline is None:  # after the body: waiting for a disconnect is not bounded
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise BodyTimeoutError(timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        return limited_receive


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _text(scope: Scope, name: bytes) -> str | None:
    value = _header(scope, name)
    return None if value is None else value.decode("latin-1")


async def _send_problem(send: Send, scope: Scope, status: int, title: str, detail: str, headers: dict,
                        type: str | None = None) -> None:
    body = problem_body(status, title, detail, type=type, instance=scope["path"])
    raw_headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
