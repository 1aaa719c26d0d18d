"""Running `pricer price` as a real process (its own session, so a test can kill it and what it started)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from app.batch import job


def command(input_path: Path, out: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "price", str(input_path), "--out", str(out), "--cpus-per-worker", "1", *options]


def run_job(args: list[str], env: dict, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s, start_new_session=True)


def start_job(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as f:
        return subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_parts(out: Path, at_least: int, process: subprocess.Popen, timeout_s: float = 180) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = len(job.done_parts(out))
        if done >= at_least:
            return done
        if process.poll() is not None:
            raise AssertionError(f"the job ended (rc {process.returncode}) with {done} parts done")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} parts done after {timeout_s} s")


def stop_group(process: subprocess.Popen) -> None:
    """Whatever the job started and left (Ray's own processes), gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def actor_processes(root_pid: int) -> list[psutil.Process]:
    """The pricing actors among the descendants of `root_pid` (Ray titles them after the class)."""
    found = []
    try:
        for child in psutil.Process(root_pid).children(recursive=True):
            try:
                if "PricingActor" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    return found
