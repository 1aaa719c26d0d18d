"""One thread on chosen cores: its CPU affinity and its torch (OpenMP/MKL) thread count, leaving the
rest of the process as it was.

On Linux `sched_setaffinity(0, ...)` applies to the calling thread only, and the OpenMP threads that
thread starts later inherit its mask. torch's `set_num_threads` sets the calling thread's OpenMP and
MKL counts, and also the default that threads not yet started pick up on their first torch call;
`pin_this_thread` puts that default back at once (from a short helper thread, which leaves the
calling thread's own count alone), so the members' worker threads keep theirs.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager


def parse_cpu_list(text: str) -> set[int]:
    """"0-2,5" -> {0, 1, 2, 5} (the kernel's and vLLM's cpu list syntax; "|" separates ranks' lists)."""
    cpus: set[int] = set()
    for part in text.replace("|", ",").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if first < 0 or last < first:
            raise ValueError(f"bad cpu range {part!r}")
        cpus.update(range(first, last + 1))
    return cpus


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (all of os.cpu_count() where affinity is not supported)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def pin_this_thread(cpus: set[int], torch_threads: int | None = None) -> bool:
    """Run the calling thread (and the OpenMP threads it starts from now on) on `cpus`, with
    `torch_threads` torch threads for this thread alone. False where the OS cannot pin threads."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(0, cpus)  # Linux: pid 0 is the calling thread
    if torch_threads is not None:
        set_torch_threads_here(torch_threads)
    return True


def set_torch_threads_here(threads: int) -> None:
    """This thread's torch intra-op threads; the process's default for other threads unchanged.
    The default is read in a fresh thread (what a thread not yet started gets), not taken from this
    thread's count: putting a pinned thread back must not make its pinned count the default."""
    try:
        import torch
    except ImportError:
        return
    if torch.get_num_threads() == threads:
        return
    default = _in_new_thread(torch.get_num_threads, "torch-threads-read")
    torch.set_num_threads(threads)
    _in_new_thread(lambda: torch.set_num_threads(default), "torch-threads-default")


def _in_new_thread(fn, name: str):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()), name=name)
    thread.start()
    thread.join()
    return out[0]


@contextmanager
def on_cpus(cpus: set[int] | frozenset[int] | None, torch_threads: int | None = None):
    """The calling thread on `cpus` with `torch_threads` torch threads for the duration, its own
    affinity and thread count put back afterwards (a pooled worker thread serves other work next).
    Nothing changes where `cpus` is None or the OS cannot pin threads."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    threads_before = _torch_threads()
    pin_this_thread(set(cpus), torch_threads)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
        if torch_threads is not None and threads_before is not None:
            set_torch_threads_here(threads_before)


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()
