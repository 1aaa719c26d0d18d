"""app/runtime/microbatch.py: concurrent callers share one call, each gets its own results in its
order, a failing item fails only its caller, and nobody waits past their deadline. The batcher is
generic, so a counting fake function stands in for the model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.runtime.microbatch import MicroBatcher, deadline_scope, time_left


class Recorder:
    """Doubles numbers, records each call's batch; raises on "bad" items; may sleep or block."""

    def __init__(self, sleep_s: float = 0.0):
        self.batches: list[list] = []
        self.sleep_s = sleep_s
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def __call__(self, items):
        self.gate.wait(10)
        with self.lock:
            self.batches.append(list(items))
        time.sleep(self.sleep_s)
        if any(item == "bad" for item in items):
            raise ValueError("bad item")
        return [item * 2 for item in items]


def run_together(batcher, requests, timeout_s=5.0):
    """Start every request at once (threads behind a barrier); results or exceptions, in order."""
    barrier = threading.Barrier(len(requests))

    def one(items):
        barrier.wait()
        try:
            return batcher.run(items, timeout_s)
        except Exception as e:
            return e

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def test_concurrent_callers_share_one_call_and_get_their_own_results_in_order():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=24, max_wait_s=5.0)  # goes once all 24 items wait
    requests = [[i, i + 100, i + 200] for i in range(8)]
    results = run_together(batcher, requests)
    assert results == [[2 * x for x in r] for r in requests]
    assert batcher.calls == len(fn.batches) == 1  # batching happened
    assert sorted(x for b in fn.batches for x in b) == sorted(x for r in requests for x in r)
    batcher.close()


def test_one_failing_item_fails_only_its_caller():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=6, max_wait_s=5.0)
    results = run_together(batcher, [[1, 2], [3, "bad", 4], [5]])
    assert results[0] == [2, 4] and results[2] == [10]
    assert isinstance(results[1], ValueError)
    assert len(fn.batches[0]) == 6  # one batch of all three, then each item alone
    assert all(len(b) == 1 for b in fn.batches[1:])
    batcher.close()


def test_a_wrong_number_of_results_is_a_failure_of_that_call():
    batcher = MicroBatcher(lambda items: items[:-1], max_batch=8, max_wait_s=0)
    with pytest.raises(ValueError, match="results for"):
        batcher.run([1, 2])
    batcher.close()


def test_a_caller_never_waits_past_its_timeout_and_its_items_are_dropped():
    fn = Recorder()
    fn.gate.clear()  # the worker is stuck in its first call
    batcher = MicroBatcher(fn, max_batch=64, max_wait_s=0)
    first = threading.Thread(target=lambda: batcher.run([1], 10))
    first.start()
    while not batcher.calls:
        time.sleep(0.001)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        batcher.run([2, 3], timeout_s=0.1)
    assert time.monotonic() - started < 1.0
    fn.gate.set()
    first.join(5)
    assert batcher.run([4]) == [8]
    assert fn.batches == [[1], [4]]  # the timed-out caller's items were never computed
    batcher.close()


def test_the_scope_deadline_bounds_a_caller_without_its_own_timeout():
    fn = Recorder(sleep_s=1.0)
    batcher = MicroBatcher(fn, max_batch=8, max_wait_s=0)
    started = time.monotonic()
    with deadline_scope(0.1), pytest.raises(TimeoutError):
        batcher.run([1])
    assert time.monotonic() - started < 0.8
    with deadline_scope(0.0), pytest.raises(TimeoutError):  # already passed: not even queued
        batcher.run([2])
    batcher.close()


def test_deadline_scopes_nest_to_the_earlier_one():
    assert time_left() is None and time_left(3.0) == 3.0
    with deadline_scope(10.0):
        assert 9.0 < time_left() <= 10.0
        with deadline_scope(0.5):
            assert time_left() <= 0.5
        with deadline_scope(60.0):
            assert time_left() <= 10.0
        assert time_left(1.0) == 1.0
    assert time_left() is None


def test_max_batch_splits_waiting_requests_into_whole_requests():
    fn = Recorder()
    fn.gate.clear()
    batcher = MicroBatcher(fn, max_batch=4, max_wait_s=0)
    threads = [threading.Thread(target=batcher.run, args=([0],))]
    threads[0].start()
    while not batcher.calls:
        time.sleep(0.001)
    for queued, items in enumerate(([1, 2, 3], [4, 5], [6], [7, 8, 9, 10, 11])):  # while the worker is busy
        threads.append(threading.Thread(target=batcher.run, args=(items,)))
        threads[-1].start()
        while len(batcher._queue) <= queued:  # in this order
            time.sleep(0.001)
    fn.gate.set()
    for t in threads:
        t.join(5)
    assert fn.batches == [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]]
    batcher.close()


def test_the_wait_gathers_a_late_caller_into_the_same_call():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=2, max_wait_s=5.0)  # waits for the second item
    late = threading.Thread(target=lambda: (time.sleep(0.05), batcher.run([2])))
    late.start()
    assert batcher.run([1]) == [2]
    late.join(5)
    assert fn.batches == [[1, 2]]
    batcher.close()


def test_a_full_batch_does_not_wait():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=2, max_wait_s=5.0)
    started = time.monotonic()
    assert batcher.run([1, 2]) == [2, 4]
    assert time.monotonic() - started < 1.0
    batcher.close()


def test_setup_runs_in_the_worker_thread_and_a_failing_setup_does_not_stop_it():
    seen = []
    batcher = MicroBatcher(lambda items: items, thread_setup=lambda: seen.append(threading.current_thread().name),
                           name="embedding-worker")
    assert batcher.run([1]) == [1]
    assert seen == ["embedding-worker"]
    batcher.close()
    broken = MicroBatcher(lambda items: items, thread_setup=lambda: 1 / 0)
    assert broken.run([1]) == [1]
    broken.close()


def test_closed_refuses_and_empty_is_empty():
    batcher = MicroBatcher(lambda items: items)
    assert batcher.run([]) == []
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.run([1])
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: items, max_batch=0)
