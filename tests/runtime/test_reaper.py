"""The reaper sidecar: a process killed by SIGKILL leaves children (as a Ray actor leaves vLLM's
engine core); with the reaper they are stopped, without it they live on (the control)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from app.runtime import reaper

PARENT = """
import subprocess, sys, time
if sys.argv[1] == "reap":
    from app.runtime.reaper import start_reaper
    start_reaper(interval_s=0.2)
child = subprocess.Popen([sys.executable, "-c",
    "import subprocess, time; g = subprocess.Popen(['sleep', '300']); print(g.pid, flush=True); time.sleep(300)"],
    stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(300)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def orphans_after_sigkill(mode: str, wait_s: float) -> list[int]:
    """Start a parent with a child and a grandchild, SIGKILL the parent alone, and return which of
    the two are still alive after `wait_s`."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd(), start_new_session=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    try:
        time.sleep(1.0)  # the reaper has seen them
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not all(gone(p) for p in pids):
            time.sleep(0.2)
        return [p for p in pids if not gone(p)]
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process trees as Linux shows them")
def test_children_of_a_killed_process_are_stopped_by_the_reaper():
    assert orphans_after_sigkill("reap", wait_s=15) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process trees as Linux shows them")
def test_without_the_reaper_they_outlive_it():
    assert len(orphans_after_sigkill("none", wait_s=2)) == 2


def test_the_reaper_of_a_process_that_exits_cleanly_signals_nothing_and_ends():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert reaper.watch(child.pid, interval_s=0.1, grace_s=1) == []
    child.wait(timeout=5)


def test_a_pid_that_does_not_exist_is_no_error():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    assert reaper.watch(child.pid, interval_s=0.1) == []
