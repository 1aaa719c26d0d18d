"""Every error the service answers is application/problem+json (RFC 9457).

`ProblemError` is what routes (ours and the adapter admin router) raise; the handlers here turn
it, FastAPI's validation errors, Starlette's HTTP errors, the adapter manager's errors and engine
failures into one shape: type, title, status, detail, instance, request_id. A client's mistake is
always a 4xx; only the engine or a bug answers 5xx, and a bug never leaks a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.adapters.leases import AdapterUnavailableError, UnknownAdapterError
from app.api.request_context import current_request_id
from app.engine.base import EngineDeadError, EngineError
from app.pricing.fields import describe_validation

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://pricer.dev/problems/"  # documentation anchors in docs/api.md, not fetched


class ProblemError(Exception):
    """Raise to answer with a problem+json document. `type` is a short slug (e.g. "unknown-adapter")
    or a full URI; `headers` are added to the response (e.g. Retry-After)."""

    def __init__(self, status: int, title: str, detail: str, type: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.type, self.headers, self.extra = type or _SLUGS.get(status, "error"), headers or {}, extra


_SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    408: "request-timeout", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
    422: "invalid-request", 431: "headers-too-large",
    429: "too-many-requests", 500: "internal-error", 503: "unavailable",
}


def problem_body(status: int, title: str, detail: str, type: str | None = None, instance: str | None = None,
                 **extra: Any) -> bytes:
    slug = type or _SLUGS.get(status, "error")
    doc = {"type": slug if "://" in slug else TYPE_BASE + slug, "title": title, "status": status, "detail": detail,
           "instance": instance, "request_id": current_request_id(), **extra}
    return json.dumps(doc, ensure_ascii=False, default=str).encode()


def problem_response(status: int, title: str, detail: str, type: str | None = None, headers: dict[str, str] | None = None,
                     instance: str | None = None, **extra: Any) -> Response:
    body = problem_body(status, title, detail, type=type, instance=instance, **extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _problem_error(request: Request, exc: ProblemError) -> Response:
    return problem_response(exc.status, exc.title, exc.detail, exc.type, exc.headers, request.url.path, **exc.extra)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    detail, fields = describe_validation(list(exc.errors()))
    return problem_response(422, "Invalid request", detail, "invalid-request", instance=request.url.path, errors=fields)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        detail = f"the request body is not valid UTF-8 ({cause.reason} at byte {cause.start}); send UTF-8 JSON"
    elif exc.status_code == 404:
        detail = f"no route {request.method} {request.url.path}; see GET /docs for the API"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; see GET /docs for the API"
    titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 408: "Request timeout", 413: "Payload too large"}
    title = titles.get(exc.status_code, "HTTP error")
    return problem_response(exc.status_code, title, detail, headers=getattr(exc, "headers", None), instance=request.url.path)


async def _unknown_adapter(request: Request, exc: Exception) -> Response:
    return problem_response(404, "Unknown adapter", str(exc), type="unknown-adapter", instance=request.url.path)


async def _adapter_unavailable(request: Request, exc: Exception) -> Response:
    return problem_response(409, "Adapter unavailable", str(exc), type="adapter-unavailable", instance=request.url.path)


async def _engine_error(request: Request, exc: EngineError) -> Response:
    dead = isinstance(exc, EngineDeadError)
    log.error("engine failure: %s", exc, extra={"route": request.url.path, "engine_dead": dead})
    if dead:  # readiness 503 at once, and the process exits (app/api/lifecycle.py)
        request.app.state.lifecycle.engine_dead(exc)
    detail = ("the inference engine has stopped; the service must be restarted" if dead
              else f"the inference engine failed on this request ({exc}); retry later")
    return problem_response(503, "Engine unavailable", detail, "engine-unavailable", {"Retry-After": "5"}, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return problem_response(500, "Internal error", "an unexpected error occurred; report the request_id", instance=request.url.path)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(UnknownAdapterError, _unknown_adapter)
    app.add_exception_handler(AdapterUnavailableError, _adapter_unavailable)
    app.add_exception_handler(Exception, _unexpected)
