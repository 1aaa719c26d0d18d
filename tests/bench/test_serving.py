"""`pricer bench serving`: its options (configs, concurrency and request lists, exit 2 naming what is
wrong), the member seconds read from /metrics, and one short run with the fake engine: the ensemble
(a small real bundle) then the LLM alone, fresh servers one after the other, none left running."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.bench.serving import Options, member_delta, member_seconds, parse_configs, plan, ratios
from app.cli import cli
from app.model.item_files import write_items
from tests.api.ensemble_fixtures import MEMBERS, write_test_bundle
from tests.api.live_server import fake_base
from tests.factories import make_items


def test_configs_are_named_environment_overrides():
    assert parse_configs(Options().config) == {"ensemble": {}, "llm": {"PRICER_ESTIMATOR": "llm"}}
    assert parse_configs(["a=PRICER_X=1,PRICER_Y=a=b", "b=", "c-2"]) == {"a": {"PRICER_X": "1", "PRICER_Y": "a=b"}, "b": {}, "c-2": {}}


@pytest.mark.parametrize("specs, says", [
    (["=PRICER_X=1"], "expected NAME=KEY=V"),
    (["a=PRICER_X"], "'PRICER_X' is not KEY=V"),
    (["a=1X=2"], "is not KEY=V"),
    (["a", "a=PRICER_X=1"], "given twice"),
])
def test_bad_configs_are_named(specs, says):
    with pytest.raises(ValueError, match=says):
        parse_configs(specs)


def test_servers_never_inherit_the_vector_cache():
    """PRICER_VECTOR_CACHE would let a server answer members from rows an earlier server wrote."""
    from app.bench.serving import server_env

    env = server_env({"PRICER_VECTOR_CACHE": "/b/v.sqlite", "PATH": "/bin"}, {"PRICER_MEMBER_CORES": "auto"})
    assert env == {"PATH": "/bin", "PRICER_MEMBER_CORES": "auto"}
    assert server_env({"PRICER_VECTOR_CACHE": "a"}, {"PRICER_VECTOR_CACHE": "b"}) == {"PRICER_VECTOR_CACHE": "b"}


def test_the_runs_pair_each_concurrency_with_its_requests():
    assert plan(Options())[1] == [(1, 40), (16, 200)]
    assert plan(Options(concurrency=" 2, 4 ", requests="10,20"))[1] == [(2, 10), (4, 20)]
    with pytest.raises(ValueError, match="--requests has 1 value"):
        plan(Options(concurrency="1,16", requests="40"))
    with pytest.raises(ValueError, match="--concurrency '1,x'"):
        plan(Options(concurrency="1,x", requests="1,2"))
    with pytest.raises(ValueError, match="--requests '0'"):
        plan(Options(concurrency="1", requests="0"))


@pytest.mark.parametrize("args, says", [
    (["--config", "a=NOPE"], "'NOPE' is not KEY=V"),
    (["--concurrency", "1,16", "--requests", "40"], "--requests has 1 value"),
])
def test_wrong_options_exit_2_naming_them(args, says, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "serving", "--data", str(tmp_path / "none.jsonl"), *args])
    assert result.exit_code == 2 and says in result.output, result.output


def test_member_seconds_from_the_metrics_text():
    def text(llm_sum, llm_count):
        return ("# TYPE pricer_member_duration_seconds histogram\n"
                f'pricer_member_duration_seconds_bucket{{le="+Inf",member="llm"}} {llm_count}\n'
                f'pricer_member_duration_seconds_count{{member="llm"}} {llm_count}\n'
                f'pricer_member_duration_seconds_sum{{member="llm"}} {llm_sum}\n'
                'pricer_member_duration_seconds_count{member="knn"} 3.0\npricer_member_duration_seconds_sum{member="knn"} 0.3\n'
                "# TYPE pricer_member_left_out_total counter\n"
                'pricer_member_left_out_total{member="llm",reason="timeout"} 1.0\n'
                'pricer_member_left_out_total{member="llm",reason="error"} 2.0\n'
                "# TYPE other_total counter\nother_total 5.0\n")

    before, after = member_seconds(text(1.0, 2)), member_seconds(text(5.0, 6))
    assert before == {"llm": (1.0, 2.0, 3.0), "knn": (0.3, 3.0, 0.0)}
    after["llm"] = (*after["llm"][:2], 5.0)
    assert member_delta(before, after) == {"llm": {"seconds": 4.0, "calls": 4, "mean_ms": 1000.0, "left_out": 2}}


def test_ratios_are_against_the_llm_config():
    def runs(*pairs):
        return {"runs": [{"concurrency": c, "requests_per_s": r, "p50_ms": p} for c, r, p in pairs]}

    compared = ratios({"ensemble": runs((1, 1.0, 300.0), (16, 3.0, 0.0)), "llm": runs((1, 2.0, 200.0), (16, 4.0, 0.0))})
    assert compared == {"ensemble": [{"concurrency": 1, "throughput_ratio": 0.5, "p50_ratio": 1.5},
                                     {"concurrency": 16, "throughput_ratio": 0.75, "p50_ratio": None}]}
    assert ratios({"a": runs((1, 1.0, 1.0))}) == {}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("bundle", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["no-bundle", "bundle"])
def test_the_ensemble_then_the_llm_alone_on_the_fake_engine(tmp_path, bundle):
    """Without a bundle the default service answers with the LLM alone (seconds); with one (its members
    load for 15 s or more on a busy 2-core machine: marked slow) the ensemble's member seconds show."""
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(12))
    if bundle:
        write_test_bundle(tmp_path)
    env = {"PRICER_ENGINE": "fake", "PRICER_MODELS_DIR": str(tmp_path), "PRICER_BASE_MODEL": str(fake_base(tmp_path)),
           "PRICER_WATCH_ADAPTERS": "false", "PRICER_DEFAULT_ADAPTER": "", "PRICER_API_KEY": "", "PRICER_ADMIN_KEY": "",
           "PRICER_LOG_JSON": "false", "PRICER_FAKE_LATENCY_S": "0.01"}
    result = CliRunner().invoke(cli, ["bench", "serving", "--data", str(data), "--concurrency", "1,4", "--requests", "6,12",
                                      "--logs", str(tmp_path / "logs"), "--ready-timeout-s", "120", "--json"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("cpu: ")
    summary = json.loads(lines[-1])
    configs = summary["configs"]
    assert list(configs) == ["ensemble", "llm"] and summary["reference"] == "llm"
    assert configs["llm"]["overrides"] == {"PRICER_ESTIMATOR": "llm"} and configs["ensemble"]["overrides"] == {}
    assert configs["ensemble"]["ensemble"] == ("pricer-ensemble@20260101-000000" if bundle else None)
    assert configs["llm"]["ensemble"] is None
    for name, config in configs.items():
        assert config["start_s"] > 0 and (tmp_path / "logs").is_dir() and config["log"] in result.output
        assert [(r["concurrency"], r["requests"], r["ok"]) for r in config["runs"]] == [(1, 6, 6), (4, 12, 12)]
        assert all(r["requests_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"] and r["errors"] == {} for r in config["runs"])
        with pytest.raises(httpx.TransportError):  # stopped: nothing listens on its port any more
            httpx.get(f"{config['url']}/healthz", timeout=2)
        assert "Finished server process" in Path(config["log"]).read_text()  # by SIGTERM: drained and stopped
    if bundle:
        assert all(set(r["members"]) == set(MEMBERS) and r["members"]["llm"]["calls"] == r["requests"]
                   and not any(m["left_out"] for m in r["members"].values()) for r in configs["ensemble"]["runs"])
        assert "ensemble member seconds: " in result.output
    assert all(r["members"] == {} for r in configs["llm"]["runs"])
    assert [r["concurrency"] for r in summary["ratios"]["ensemble"]] == [1, 4]
    assert all(r["throughput_ratio"] > 0 and r["p50_ratio"] > 0 for r in summary["ratios"]["ensemble"])
    for concurrency, requests in ((1, 6), (4, 12)):
        assert f"concurrency {concurrency} ({requests} requests each)" in result.output
    assert any(line.startswith("ensemble ") and line.split()[-2:] != ["-", "-"] for line in lines)
    assert any(line.startswith("llm ") and line.split()[-2:] == ["-", "-"] for line in lines)


def test_a_server_that_does_not_start_is_exit_1_pointing_at_its_log(tmp_path):
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(2))
    env = {"PRICER_ENGINE": "fake", "PRICER_MODELS_DIR": str(tmp_path), "PRICER_BASE_MODEL": str(fake_base(tmp_path))}
    result = CliRunner().invoke(cli, ["bench", "serving", "--data", str(data), "--config", "broken=PRICER_ESTIMATOR=nope",
                                      "--logs", str(tmp_path / "logs"), "--ready-timeout-s", "60"], env=env)
    assert result.exit_code == 1, result.output
    log = next((tmp_path / "logs").glob("serving-broken-*.log"))
    assert "broken: pricer serve did not become ready" in result.output and f"see its log {log}" in result.output
