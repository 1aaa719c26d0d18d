"""Child servers that never outlive the command that started them.

A `finally` does not run when a process is killed by SIGTERM (Python's default action is to die at
once), which is how CI and `timeout` stop a command: `pricer bench --compare-vllm` killed that way
left vLLM's server computing on a core. So a command that starts a server runs it through
`child_server`, which
- starts it in its own process group (its engine core is its child) and stops the whole group,
- on Linux asks the kernel to send it SIGTERM when its parent dies, even by SIGKILL (PR_SET_PDEATHSIG),
- while it runs, turns SIGTERM and SIGINT into a stop of every registered child first, then
  SystemExit(128 + signal) (KeyboardInterrupt for SIGINT), so the command's own cleanup runs too.
`exit_on_sigterm` gives any command (in-process vLLM engines spawn an engine-core process) the same
SystemExit on SIGTERM, so their context managers and atexit hooks stop what they started.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 20.0
_children: set[subprocess.Popen] = set()
_lock = threading.Lock()


def _prctl():
    """libc's prctl, looked up in the parent: the child between fork and exec only calls it."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the signal handlers below still stop the child
        return None


def _die_with_parent(prctl) -> None:
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_group(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to the child's process group, then SIGKILL if it has not stopped in `timeout_s`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        log.warning("child %d did not stop in %.0f s; killing its group", process.pid, timeout_s)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=10)


def stop_all_children() -> None:
    with _lock:
        children = list(_children)
    for process in children:
        stop_group(process)


def _on_signal(signum, frame) -> None:
    stop_all_children()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextmanager
def stopping_children_on_signals() -> Iterator[None]:
    """SIGTERM/SIGINT stop the registered children, then exit; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; PDEATHSIG still covers the child
        return
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def child_server(command: Sequence[str], **popen_kwargs) -> Iterator[subprocess.Popen]:
    """Popen(command) in its own group, stopped (group and all) on exit, on SIGTERM/SIGINT, and when
    this process dies."""
    prctl = _prctl() if sys.platform.startswith("linux") else None
    preexec = (lambda: _die_with_parent(prctl)) if prctl is not None else None
    with stopping_children_on_signals():
        process = subprocess.Popen(list(command), start_new_session=True, preexec_fn=preexec, **popen_kwargs)
        with _lock:
            _children.add(process)
        try:
            yield process
        finally:
            try:
                stop_group(process)
            finally:
                with _lock:
                    _children.discard(process)


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit(143) in the main thread, so `finally`, context managers and atexit
    hooks (vLLM's engine shutdown among them) run, as they do for Ctrl-C."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_signal)
