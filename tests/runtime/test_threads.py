"""app/runtime/threads.py: one thread pinned, the rest of the process as it was. torch is a recording
stand-in here (tests/index/test_minilm_batching.py checks the real one under the heavy-job lock)."""

from __future__ import annotations

import os
import sys
import threading
import types

import pytest

from app.runtime.threads import allowed_cpus, parse_cpu_list, pin_this_thread, set_torch_threads_here


def test_parse_cpu_list():
    assert parse_cpu_list("0-2,5") == {0, 1, 2, 5}
    assert parse_cpu_list(" 1 | 3-4 ") == {1, 3, 4}
    assert parse_cpu_list("") == set()
    with pytest.raises(ValueError):
        parse_cpu_list("3-1")


def in_thread(fn):
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()))
    thread.start()
    thread.join()
    return out["value"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no thread affinity on this OS")
def test_pinning_moves_only_the_calling_thread():
    allowed = allowed_cpus()
    target = {max(allowed)}
    assert in_thread(lambda: (pin_this_thread(target), os.sched_getaffinity(0))[1]) == target
    assert os.sched_getaffinity(0) == allowed
    assert pin_this_thread(set()) is False


def test_torch_threads_change_for_this_thread_and_the_default_is_put_back(monkeypatch):
    """torch's set_num_threads sets the caller's count and the default of threads not yet started."""
    state = {"default": 4}
    local = threading.local()
    calls = []

    def get_num_threads():
        return getattr(local, "n", state["default"])

    def set_num_threads(n):
        calls.append((threading.current_thread().name, n))
        local.n = state["default"] = n

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(get_num_threads=get_num_threads,
                                                                   set_num_threads=set_num_threads))
    assert in_thread(lambda: (set_torch_threads_here(1), get_num_threads())[1]) == 1
    assert state["default"] == 4 and [n for _, n in calls] == [1, 4]
    assert calls[1][0] == "torch-threads-default"
    calls.clear()
    in_thread(lambda: set_torch_threads_here(4))  # already so: nothing called
    assert calls == []


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no thread affinity on this OS")
def test_on_cpus_pins_for_the_block_and_puts_the_thread_back(monkeypatch):
    from app.runtime.threads import on_cpus

    local, state = threading.local(), {"default": 4}  # torch: set_num_threads also sets the default

    def set_num_threads(n):
        local.n = state["default"] = n

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(
        get_num_threads=lambda: getattr(local, "n", state["default"]), set_num_threads=set_num_threads))
    allowed = allowed_cpus()
    target = {max(allowed)}

    def inside_and_after():
        with on_cpus(target, 1):
            inside = (os.sched_getaffinity(0), getattr(local, "n", 4))
        return inside, (os.sched_getaffinity(0), getattr(local, "n", 4))

    inside, after = in_thread(inside_and_after)
    assert inside == (target, 1) and after == (allowed, 4)
    assert state["default"] == 4  # putting the thread back left the process's default as it was
    with on_cpus(None, 1):  # no placement: nothing changes
        assert os.sched_getaffinity(0) == allowed
    with pytest.raises(RuntimeError), on_cpus(target):  # an error inside still puts the thread back
        raise RuntimeError("member failed")
    assert os.sched_getaffinity(0) == allowed
