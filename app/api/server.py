"""The HTTP server under the app: uvicorn, with the edges that live below ASGI made ours.

- Errors uvicorn's parser answers itself (a malformed request line, a bad Content-Length) are
  problem+json like every other error, and a request line plus headers over PRICER_MAX_HEADER_BYTES
  is refused with 431 before it is buffered further (httptools alone has no limit).
- SIGINT/SIGTERM drain for up to PRICER_SHUTDOWN_TIMEOUT_S, then the app's shutdown (itself
  bounded) runs; a second signal exits at once.
"""

from __future__ import annotations

import json
import logging
import os
import signal

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.errors import PROBLEM_JSON, TYPE_BASE
from app.config import Settings

log = logging.getLogger(__name__)

_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit and problem+json parser errors."""

    max_header_bytes = 32_768

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._header_bytes = 0
        self._in_headers = True
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers, self._header_bytes = False, 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            # Only the bytes up to the blank line that ends the headers: a client may send a large body
            # in the same packet, and its bytes are the body limit's business (PRICER_MAX_BODY_BYTES).
            end = data.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else end + 4
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, "Request header fields too large",
                             f"the request line and headers are over {self.max_header_bytes} bytes (PRICER_MAX_HEADER_BYTES)")
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as e:
            self.logger.warning("Invalid HTTP request received: %s", e)
            self._refuse(400, "Bad request", f"the request is not valid HTTP/1.1: {e}")

    def send_400_response(self, msg: str) -> None:  # uvicorn's own 400s (e.g. invalid headers)
        self._refuse(400, "Bad request", msg)

    def _refuse(self, status: int, title: str, detail: str) -> None:
        body = json.dumps({"type": TYPE_BASE + ("headers-too-large" if status == 431 else "bad-request"), "title": title,
                           "status": status, "detail": detail, "instance": None, "request_id": None}).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: " + PROBLEM_JSON.encode() + b"\r\n", b"content-length: %d\r\n" % len(body),
                 b"connection: close\r\n\r\n"]
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + body)
            self.transport.close()


class PricerServer(uvicorn.Server):
    """A first SIGINT/SIGTERM drains and shuts down; a second one exits at once."""

    def handle_exit(self, sig: int, frame) -> None:
        if self.should_exit:
            # No logging here: another thread may hold a handler's lock, and this must not wait.
            os.write(2, f"second {signal.Signals(sig).name}: exiting now, without the rest of the shutdown\n".encode())
            os._exit(128 + sig)
        super().handle_exit(sig, frame)


def build_server(app, settings: Settings) -> PricerServer:
    protocol = type("PricerHttpProtocol", (ProblemHttpToolsProtocol,), {"max_header_bytes": settings.max_header_bytes})
    # no log_config: logging_setup configured it; no access_log: the middleware logs each request with its id
    return PricerServer(uvicorn.Config(app, host=settings.host, port=settings.port, http=protocol, log_config=None,
                                       access_log=False, lifespan="on", timeout_keep_alive=30,
                                       timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s))))
