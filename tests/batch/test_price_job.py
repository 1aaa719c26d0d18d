"""`pricer price` end to end on a local Ray (the fake engine; num_cpus small, a few dozen rows):
bad rows in the errors file and the job completes; kill -9 the driver mid-run, rerun: every input
id exactly once with the prices of an uninterrupted run; a finished folder does nothing; another
job's folder, duplicate ids and bad input are refused before any work; a killed worker is
restarted by Ray and the same run finishes with every id once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from app.batch import inputs, job
from app.batch.actor import PricingActor
from app.batch.output import read_all
from app.batch.run import stage, worker_settings
from app.config import Settings
from app.versions import desired
from tests.api.ensemble_fixtures import write_test_bundle
from tests.batch.fixtures import catalog_rows, job_env, make_store, settings_values, write_jsonl
from tests.batch.jobs import actor_processes, command, run_job, start_job, stop_group, wait_for_parts

pytestmark = pytest.mark.timeout(600)
BAD = [{"id": 90, "title": "...", "description": "!!"}, {"id": 91, "title": 5, "description": "a drill"}]
SLOW = ("--part-rows", "4", "--batch-size", "2")


def reference_prices(tmp_path, store, input_path) -> dict:
    """The same file priced by one PricingActor in-process, in one part: an uninterrupted run."""
    out = tmp_path / "reference"
    catalog = inputs.load(input_path)
    stage(out, catalog, len(catalog))
    actor = PricingActor(worker_settings(Settings(**settings_values(store))), str(out), "parquet", 0, catalog.id_type, 64, {})
    actor.price_part(0)
    actor.stack.close()
    return {r["id"]: r for r in read_all(out, "prices", "parquet")}


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("price")
    store = make_store(tmp / "store")
    rows = catalog_rows(40) + BAD
    input_path = write_jsonl(tmp / "in.jsonl", rows)
    out = tmp / "out"
    args = command(input_path, out, *SLOW, "--json")
    first = start_job(args, job_env(store, PRICER_FAKE_LATENCY_S="0.3"), tmp / "first.log")
    try:
        done_at_kill = wait_for_parts(out, 2, first)
        os.kill(first.pid, signal.SIGKILL)  # the driver, mid-run
        first.wait(timeout=30)
    finally:
        stop_group(first)
    time.sleep(1)
    done_after_kill = len(job.done_parts(out))
    resumed = run_job(args, job_env(store))
    again = run_job(args, job_env(store))
    return dict(tmp=tmp, store=store, rows=rows, input=input_path, out=out, done_at_kill=done_at_kill,
                done_after_kill=done_after_kill, resumed=resumed, again=again, log=(tmp / "first.log").read_text())


def test_a_killed_job_resumes_and_holds_every_id_exactly_once(killed_and_resumed):
    r = killed_and_resumed
    parts = -(-len(r["rows"]) // 4)
    assert 2 <= r["done_after_kill"] < parts, r["log"][-2000:]  # killed mid-run, not before or after
    assert r["resumed"].returncode == 0, r["resumed"].stderr[-3000:]
    assert f"resuming: {r['done_after_kill']} of {parts} parts already done" in r["resumed"].stderr
    summary = json.loads(r["resumed"].stdout.strip().splitlines()[-1])
    assert (summary["rows"], summary["priced"], summary["errors"], summary["duplicates"], summary["missing"]) == (42, 40, 2, 0, 0)
    assert summary["worker_items_per_s"] > summary["items_per_s"] > 0  # the parts' own time leaves Ray's start out
    assert set(summary["member_seconds"]) == {"bow-ridge", "constant", "llm"} and summary["versions"]["model"] == "fake"
    priced = read_all(r["out"], "prices", "parquet")
    errors = read_all(r["out"], "errors", "parquet")
    ids = [row["id"] for row in priced + errors]
    assert sorted(ids) == sorted(row["id"] for row in r["rows"])  # every id, exactly once
    assert not [p for p in r["out"].rglob("*") if p.name.endswith(".tmp") and "parts" in p.parts]


def test_resumed_prices_equal_an_uninterrupted_run(killed_and_resumed):
    r = killed_and_resumed
    reference = reference_prices(r["tmp"], r["store"], r["input"])
    priced = {row["id"]: row for row in read_all(r["out"], "prices", "parquet")}
    assert priced.keys() == reference.keys() and len(priced) == 40
    assert priced == reference


def test_bad_rows_land_in_the_errors_file_with_the_apis_reasons(killed_and_resumed):
    errors = {row["id"]: row["reason"] for row in read_all(killed_and_resumed["out"], "errors", "parquet")}
    assert errors == {90: "no words or numbers left once punctuation is removed; send a real title or description",
                      91: "title: Input should be a valid string"}


def test_a_finished_folder_does_nothing_and_says_so(killed_and_resumed):
    again = killed_and_resumed["again"]
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to do: " in again.stderr and "(42 rows: 40 priced, 2 errors)" in again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["already_done"] is True


def test_another_jobs_folder_is_refused(killed_and_resumed):
    r = killed_and_resumed
    other = write_jsonl(r["tmp"] / "other.jsonl", catalog_rows(5, seed=9))
    refused = run_job(command(other, r["out"]), job_env(r["store"]))
    assert refused.returncode == 2 and "holds another job's results (input_sha256: " in refused.stderr
    newer = write_test_bundle(r["tmp"] / "store2", version="20270101-000000")
    newer.rename(r["store"] / "ensembles" / "pricer-ensemble" / newer.name)
    try:
        refused = run_job(command(r["input"], r["out"], *SLOW), job_env(r["store"]))
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert ("ensemble: 'pricer-ensemble@20260101-000000' here, 'pricer-ensemble@20270101-000000' now"
                in refused.stderr)
    finally:
        (r["store"] / "ensembles" / "pricer-ensemble" / newer.name).rename(newer)


def test_a_finished_folder_is_refused_once_the_desired_state_names_another_adapter(killed_and_resumed):
    r = killed_and_resumed
    desired.update(r["store"], adapter=("pricer-smollm2", "20990101-000000-s000001"))
    try:
        refused = run_job(command(r["input"], r["out"], *SLOW), job_env(r["store"]))
    finally:
        desired.state_path(r["store"]).unlink()
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "adapter: None here, 'pricer-smollm2@20990101-000000-s000001' now" in refused.stderr


@pytest.mark.parametrize("content, message", [
    ('{"id": 1, "title": "a"}\n{"id": 1, "title": "b"}\n', "1 duplicate ids in column 'id', e.g. 1 (2x)"),
    ('{"sku": 1, "title": "a"}\n', "no id column 'id'"),
    ('{"id": 1, "title": "a"\n', "line 1 is not JSON"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, content, message):
    store = make_store(tmp_path / "store")
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    refused = run_job(command(path, tmp_path / "out"), job_env(store), timeout_s=60)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_comparables_without_an_index_are_refused_before_any_work(tmp_path):
    store = make_store(tmp_path / "store")
    path = write_jsonl(tmp_path / "in.jsonl", catalog_rows(3))
    refused = run_job(command(path, tmp_path / "out", "--comparables", "3"), job_env(store), timeout_s=60)
    assert refused.returncode == 2 and "--comparables 3: no index at " in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_a_killed_worker_is_restarted_and_the_run_finishes_with_every_id_once(tmp_path):
    store = make_store(tmp_path / "store")
    rows = catalog_rows(24, seed=2)
    input_path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    process = start_job(command(input_path, out, *SLOW, "--json"), job_env(store, PRICER_FAKE_LATENCY_S="0.3"), tmp_path / "job.log")
    try:
        wait_for_parts(out, 1, process)
        actors = actor_processes(process.pid)
        assert actors, "no pricing actor found"
        actors[0].kill()
        rc = process.wait(timeout=300)
    finally:
        stop_group(process)
    log = (tmp_path / "job.log").read_text()
    assert rc == 0, log[-3000:]
    summary = json.loads([line for line in log.splitlines() if line.startswith('{"rows"')][-1])
    assert "restarting" in log or "actor" in log.lower()
    assert (summary["rows"], summary["priced"], summary["duplicates"], summary["missing"]) == (24, 24, 0, 0)
    ids = [row["id"] for row in read_all(out, "prices", "parquet")]
    assert sorted(ids) == sorted(row["id"] for row in rows)


def test_a_resumed_job_refuses_workers_serving_another_adapter(killed_and_resumed, tmp_path):
    """Parts priced by adapter A, the rest now served by another version: refused, not mixed."""
    r = killed_and_resumed
    out = tmp_path / "out"
    shutil.copytree(r["out"], out)
    manifest = job.read_manifest(out)
    job.write_json(out / job.MANIFEST, {**manifest, "status": "running"})
    done = job.done_parts(out)
    job.summary_path(out, max(done)).unlink()
    for index, summary in done.items():
        if index != max(done):
            job.write_json(job.summary_path(out, index), {**summary, "versions": {**summary["versions"], "adapter": "pricer-smollm2@old"}})
    refused = run_job(command(r["input"], out, *SLOW), job_env(r["store"]))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "the job prices with adapter 'pricer-smollm2@old', this worker serves None" in refused.stderr
    assert not job.summary_path(out, max(done)).exists()  # nothing priced with the other version
