"""Across machines, for real: a head and a worker node (separate `ray start` processes, one CPU
each) price a small file with actors on both nodes, and the output equals a local run's; killing
the worker node mid-job still finishes with every id once (Ray restarts its actor on the head).

Slow (two Ray nodes and three jobs). The fake-engine case checks the cluster mechanics; the
`vllm` case does it with the tiny test model in real vLLM engines, one per node."""

from __future__ import annotations

import json
import time

import pytest

from app.batch import job
from app.batch.output import read_all
from tests.api.ensemble_fixtures import write_test_bundle
from tests.batch.cluster import leftovers, two_nodes
from tests.batch.fixtures import catalog_rows, job_env, make_store, write_jsonl
from tests.batch.jobs import command, run_job, start_job, wait_for_parts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
PARTS = ("--part-rows", "4", "--batch-size", "2")
TINY = dict(PRICER_ENGINE="vllm", PRICER_MAX_MODEL_LEN="512", PRICER_PROMPT_TOKEN_BUDGET="400", PRICER_MAX_NUM_SEQS="16",
            PRICER_MAX_LORAS="2", PRICER_MAX_LORA_RANK="16", PRICER_KV_CACHE_GIB="1", PRICER_DEVICE="cpu")


@pytest.fixture(params=["fake", pytest.param("vllm", marks=pytest.mark.vllm)])
def store_env(request, tmp_path):
    if request.param == "fake":
        store = make_store(tmp_path / "store")
        return job_env(store, RAY_AUTH_MODE="disabled")
    model_dir = request.getfixturevalue("tiny_model_dir")
    store = model_dir.parent.parent
    if not (store / "ensembles").exists():
        write_test_bundle(store)
    return job_env(store, PRICER_BASE_MODEL=str(model_dir), RAY_AUTH_MODE="disabled", **TINY)


def ids_once(out, rows) -> dict:
    priced = read_all(out, "prices", "parquet")
    ids = [r["id"] for r in priced + read_all(out, "errors", "parquet")]
    assert sorted(ids) == sorted(r["id"] for r in rows)  # every id, exactly once
    return {r["id"]: r for r in priced}


def test_two_nodes_price_like_a_local_run_and_survive_losing_the_worker_node(tmp_path, store_env):
    started = time.time()
    rows = catalog_rows(24, seed=4)
    path = write_jsonl(tmp_path / "in.jsonl", rows)

    local = run_job(command(path, tmp_path / "local", *PARTS, "--json"), store_env, timeout_s=600)
    assert local.returncode == 0, local.stderr[-3000:]
    reference = ids_once(tmp_path / "local", rows)

    with two_nodes(tmp_path, store_env) as (address, head, worker):
        both = run_job(command(path, tmp_path / "cluster", *PARTS, "--ray-address", address, "--workers", "2", "--json"),
                       dict(store_env, PRICER_FAKE_LATENCY_S="0.3"), timeout_s=600)
        assert both.returncode == 0, both.stderr[-3000:]
        # Ray forwards the actors' output (vLLM logs to stdout) to the driver's, so the summary is the
        # last JSON line, not always the last line.
        summary = next(json.loads(line) for line in reversed(both.stdout.strip().splitlines())
                       if line.startswith("{") and '"rows"' in line)
        assert (summary["rows"], summary["duplicates"], summary["missing"]) == (24, 0, 0)
        nodes = {s["node"] for s in job.done_parts(tmp_path / "cluster").values()}
        assert len(nodes) == 2, f"parts priced on {len(nodes)} node(s)"  # actors on both nodes
        assert ids_once(tmp_path / "cluster", rows) == reference  # equal to the local run

        out = tmp_path / "lost-node"
        process = start_job(command(path, out, *PARTS, "--ray-address", address, "--workers", "2", "--json"),
                            dict(store_env, PRICER_FAKE_LATENCY_S="0.5"), tmp_path / "lost-node.log")
        try:
            wait_for_parts(out, 2, process, timeout_s=600)
            worker.kill()  # the whole worker node, mid-job
            rc = process.wait(timeout=900)
        finally:
            if process.poll() is None:
                process.kill()
        log = (tmp_path / "lost-node.log").read_text()
        assert rc == 0, log[-3000:]
        assert len(job.done_parts(out)) == 6
        assert ids_once(out, rows) == reference
    # nothing outlives its node: not the lost node's engine cores (app.runtime.reaper), not the head's
    assert leftovers(started) == []
