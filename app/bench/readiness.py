"""Waiting for a server to come up: one loop for the benchmarks and the tests that boot servers."""

from __future__ import annotations

import subprocess
import time

import httpx


class ServerExitedError(RuntimeError):
    """The server's process ended before it became ready."""


def wait_until_ready(url: str, timeout_s: float, process: subprocess.Popen | None = None, interval_s: float = 0.5) -> set[int]:
    """Poll `url` until it answers 200. Returns the HTTP statuses seen on the way (e.g. 503 while
    a model loads). Raises ServerExitedError if `process` exits first, TimeoutError on time-out."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise ServerExitedError(f"the server exited with {process.returncode} before {url} was ready")
        try:
            status = httpx.get(url, timeout=2).status_code
            seen.add(status)
            if status == 200:
                return seen
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} was not ready within {timeout_s:.0f} s")
        time.sleep(interval_s)
