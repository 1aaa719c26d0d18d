"""A sidecar that stops a process's descendants once that process is gone, however it went.

A Ray actor that runs vLLM starts an engine-core process (and, with more than one worker, worker
processes) by multiprocessing. When the actor is killed by SIGKILL, or its whole node is lost, those
children are re-parented to init and keep their memory (about 2 GB each on a CPU; the accelerator's
memory on a GPU): vLLM does not watch its parent, PR_SET_PDEATHSIG cannot be set on children that
a library starts, and Ray's own clean-up (`RAY_kill_child_processes_on_worker_exit*`) runs in the
worker or the raylet, which are gone too when the node is lost.

`start_reaper()` starts `python -m app.runtime.reaper PID` in a session of its own (so that a kill of the
node's process group spares it). It records PID's descendants every `interval_s` and, once PID has
exited, sends them SIGTERM, then SIGKILL after `grace_s`, and exits. Processes are tracked with
their start time (psutil), so a re-used pid is never hit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress

import psutil

INTERVAL_S = 1.0
GRACE_S = 5.0


def start_reaper(pid: int | None = None, interval_s: float = INTERVAL_S) -> subprocess.Popen:
    """Watch `pid` (default: this process) from a detached sidecar."""
    command = [sys.executable, "-m", "app.runtime.reaper", str(pid or os.getpid()), "--interval-s", str(interval_s)]
    return subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    """Its children's tree, less this sidecar (the watched process's child too)."""
    try:
        return [p for p in process.children(recursive=True) if p.pid != os.getpid()]
    except psutil.NoSuchProcess:
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def watch(pid: int, interval_s: float = INTERVAL_S, grace_s: float = GRACE_S) -> list[int]:
    """Block until `pid` exits, then stop what it left behind; returns the pids signalled."""
    try:
        target = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return []
    known: dict[int, psutil.Process] = {}
    while _alive(target):
        known.update((p.pid, p) for p in _descendants(target))
        time.sleep(interval_s)
    left = [p for p in known.values() if _alive(p)]
    for process in list(left):  # what they started since the last look
        left.extend(p for p in _descendants(process) if p.pid not in known)
    for process in left:
        with suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=grace_s)
    for process in alive:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    return [p.pid for p in left]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m app.runtime.reaper", description=__doc__.splitlines()[0])
    parser.add_argument("pid", type=int)
    parser.add_argument("--interval-s", type=float, default=INTERVAL_S)
    parser.add_argument("--grace-s", type=float, default=GRACE_S)
    args = parser.parse_args(argv)
    watch(args.pid, args.interval_s, args.grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
