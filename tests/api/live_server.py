"""Serve an app on a real socket in a background thread (for clients that are synchronous)."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

from app.bench.readiness import wait_until_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app, timeout_s: float = 20.0):
    """Yields the base URL once the app is started and ready."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/readyz", timeout_s, interval_s=0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
