"""The request id of the request being served, for logs and error bodies.

A contextvar: set once by the middleware, read by every log record (through RequestIdFilter) and
by problem+json bodies, so no function has to pass the id along.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
# A client's id is kept only if it is short and made of safe characters (no log injection, no
# header splitting); otherwise a fresh one replaces it.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_request_id: ContextVar[str | None] = ContextVar("pricer_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(raw: bytes | None) -> str:
    """The client's X-Request-Id if it is safe, else a new one."""
    if raw:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if _SAFE_ID.fullmatch(text):
            return text
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True
