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


@contextmanager
def serve_process(tmp_path, env: dict[str, str], ready_timeout_s: float = 60.0, wait: bool = True):
    """`pricer serve` as a real process (its own process group, like a terminal's job). Yields
    (url, process, log_path); the process is killed at the end if it is still running."""
    import os
    import signal
    import subprocess
    import sys

    port = free_port()
    full_env = dict(os.environ, PRICER_WATCH_ADAPTERS="false", PRICER_DEFAULT_ADAPTER="", PRICER_LOG_JSON="true")
    full_env.update(env)
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        if wait:
            try:
                wait_until_ready(f"{url}/readyz", ready_timeout_s, process, interval_s=0.1)
            except Exception as e:
                raise AssertionError(f"{e}:\n{log_path.read_text()[-3000:]}") from None
        yield url, process, log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def fake_base(tmp_path):
    """A base-model folder the fake engine and the adapter manager accept (config.json only)."""
    base = tmp_path / "base" / "fake"
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.json").write_text("{}")
    return base
