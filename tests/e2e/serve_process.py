"""A real `pricer serve` process for e2e tests: started with the given environment, waited on until
ready (its log in the failure message), and always stopped (SIGTERM, then kill after 60 s)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.bench.readiness import ServerExitedError, wait_until_ready
from tests.api.live_server import free_port


def stop(process: subprocess.Popen, timeout_s: float = 60) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@contextmanager
def serving(env: dict[str, str], log_path: Path, ready_timeout_s: float = 240) -> Iterator[str]:
    """Yields the service's URL once /readyz answers 200."""
    port = free_port()
    with Path(log_path).open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env,
                                   stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_ready(f"{url}/readyz", ready_timeout_s, process, interval_s=0.2)
            except (ServerExitedError, TimeoutError) as e:
                raise AssertionError(f"{e}:\n{Path(log_path).read_text()[-3000:]}") from None
            yield url
        finally:
            stop(process)
