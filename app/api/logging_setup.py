"""Structured logs for `pricer serve`: one JSON object a line on stderr, every record carrying the
request id of the request it belongs to (null outside requests). Uvicorn's and vLLM's loggers
propagate to the same handler, so the whole process logs in one format."""

from __future__ import annotations

import logging
import os
import sys

from app.api.request_context import RequestIdFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def build_handler(json_logs: bool = True, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_logs:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                                           datefmt="%Y-%m-%dT%H:%M:%S%z"))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def setup_logging(level: str = "info", json_logs: bool = True) -> None:
    # vLLM installs its own handler on import unless told not to; we want its records in our format.
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    handler = build_handler(json_logs)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "vllm"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
