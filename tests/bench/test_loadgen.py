"""The load generator's statistics: percentiles, aggregation, errors by status."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.bench.loadgen import LoadResult, format_summary, percentile, run_load


@pytest.mark.parametrize("q", [0, 1, 50, 95, 99, 100])
def test_percentile_matches_numpy(q):
    values = [float(v) for v in np.random.default_rng(0).exponential(20, size=137)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_nan_and_of_one_is_it():
    assert percentile([], 50) != percentile([], 50)
    assert percentile([7.0], 99) == 7.0


def test_summary_counts_errors_apart_from_latencies():
    result = LoadResult(seconds=2.0, latencies_ms=[10.0, 20.0, 30.0, 40.0])
    result.errors.update({"429": 2, "503": 1})
    s = result.summary()
    assert s["requests"] == 7 and s["ok"] == 4
    assert s["requests_per_s"] == 2.0  # completed successfully per second
    assert s["p50_ms"] == 25.0
    assert s["errors"] == {"429": 2, "503": 1}
    assert "429: 2" in format_summary("x", s)


async def test_run_load_sends_each_request_once_with_bounded_concurrency():
    seen, in_flight, peak = [], 0, 0

    async def send(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        seen.append(i)
        if i % 10 == 3:
            return 429
        if i % 10 == 7:
            raise ConnectionError("refused")
        return 200

    result = await run_load(send, concurrency=4, requests=50)
    assert sorted(seen) == list(range(50))
    assert peak == 4
    assert result.ok == 40
    assert result.errors == {"429": 5, "connection (ConnectionError)": 5}
    assert result.seconds > 0 and all(ms >= 2 for ms in result.latencies_ms)


def test_merge_pools_latencies_errors_and_time():
    from app.bench.loadgen import merge

    a = LoadResult(seconds=1.0, latencies_ms=[10.0, 30.0])
    b = LoadResult(seconds=3.0, latencies_ms=[20.0])
    b.errors["500"] += 1
    s = merge([a, b]).summary()
    assert s["ok"] == 3 and s["requests"] == 4 and s["errors"] == {"500": 1}
    assert s["requests_per_s"] == 0.75 and s["p50_ms"] == 20.0
