"""`pricer bench fleet` on the fake engine: the synthetic store passes the service's checks, and a
short run (two replicas, two activations) reports propagation, failures and wrong versions."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.adapters.store import scan
from app.adapters.validation import check_static, read_base_facts
from app.bench.fleet_store import make_store
from app.cli import cli


def test_the_synthetic_store_passes_the_static_checks(tmp_path):
    base, versions = make_store(tmp_path, "bench", versions=2)
    facts = read_base_facts(base)
    found = scan(tmp_path / "adapters")
    assert [v.version for v in found] == versions
    for version in found:
        assert check_static(version, tmp_path / "adapters", facts, max_rank=16)["rank"] == 4


def test_a_short_run_on_two_replicas(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "fleet", "--replicas", "2", "--activations", "2", "--poll-s", "0.3",
                                      "--settle-s", "0.3", "--concurrency", "4", "--store", str(tmp_path / "store"),
                                      "--timeout-s", "20", "--ready-timeout-s", "120", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["replicas"] == 2 and summary["activations"] == 2 and summary["requests"] > 0
    assert summary["failed"] == 0 and summary["wrong_after_convergence"] == 0
    rounds = summary["rounds"]
    assert [r["generation"] for r in rounds] == sorted({r["generation"] for r in rounds})  # grew each time
    assert all(len(r["per_replica_s"]) == 2 and max(r["per_replica_s"]) == r["seconds"] for r in rounds)
    assert 0 < summary["propagation_p50_s"] <= summary["propagation_max_s"] < 20
