"""A two-node Ray cluster on this machine for tests: `ray start --head` and `ray start --address`
as separate processes (each in its own process group, so that a test can kill one node and only
what it started), each with its own share of the CPUs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.api.live_server import free_port

RAY = str(Path(sys.executable).parent / "ray")


def node_command(address: str | None, port: int, cpus: int, temp_dir: str) -> list[str]:
    common = [f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    if address is None:
        return [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}", *common]
    return [RAY, "start", f"--address={address}", *common]


def wait_nodes(address: str, count: int, env: dict, timeout_s: float = 120) -> None:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = subprocess.run([sys.executable, "-c", probe, address], env=env, capture_output=True, text=True, timeout=60)
        if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise AssertionError(f"the cluster at {address} did not reach {count} nodes: {result.stderr[-1500:]}")


def leftovers(since: float, wait_s: float = 20.0) -> list[str]:
    """Ray workers and vLLM engine processes started after `since` (a time.time()) that are still
    alive `wait_s` after their nodes were stopped (the reaper needs a few seconds)."""
    import psutil

    def ours() -> list[str]:
        found = []
        for process in psutil.process_iter(["name", "cmdline", "create_time", "status"]):
            info = process.info
            text = " ".join([info["name"] or "", *(info["cmdline"] or [])])
            if (info["create_time"] or 0) >= since and info["status"] != psutil.STATUS_ZOMBIE and (
                    "VLLM" in text or text.startswith("ray::")):
                found.append(f"{process.pid} {text[:80]}")
        return found

    deadline = time.monotonic() + wait_s
    while (found := ours()) and time.monotonic() < deadline:
        time.sleep(1)
    return found


class Node:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process, self.log = process, log

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the node's raylet, its workers, ray start itself
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


@contextmanager
def two_nodes(folder: Path, env: dict, head_cpus: int = 2, worker_cpus: int = 1):
    """Yields (address, head, worker). The head has room for a second actor: the one restarted
    when the worker node is lost."""
    env = dict(env, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")  # a loopback test cluster
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    nodes = []
    try:
        for role, target, cpus in (("head", None, head_cpus), ("worker", address, worker_cpus)):
            log = folder / f"ray-{role}.log"
            with log.open("wb") as f:
                process = subprocess.Popen(node_command(target, port, cpus, temp_dir), env=env, stdout=f,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            nodes.append(Node(process, log))
            wait_nodes(address, len(nodes), env)
        yield address, nodes[0], nodes[1]
    finally:
        for node in reversed(nodes):
            node.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)
