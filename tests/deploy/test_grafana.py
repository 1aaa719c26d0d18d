"""The Grafana dashboard and provisioning: valid JSON, queries that a real PromQL parser accepts,
wired to the provisioned data source, and the name extractor that the live test relies on."""

from __future__ import annotations

import copy

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tests.deploy import dashboard as dash
from tests.deploy.tools import ROOT

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
# What the dashboard must show (issue 6): requests, errors, latency, estimates, adapters, vLLM queue and KV cache.
REQUIRED_METRICS = {
    "pricer_requests_total",
    "pricer_request_duration_seconds_bucket",
    "pricer_estimate_dollars_bucket",
    "pricer_inflight_requests",
    "pricer_adapter_active_info",
    "pricer_adapter_loads_total",
    "pricer_adapter_swap_seconds_bucket",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
}


@pytest.fixture(scope="module")
def board() -> dict:
    return dash.load()


def test_dashboard_shape(board):
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    panels = list(dash.iter_panels(board["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t.get("expr") for t in panel["targets"]), panel["title"]


def test_every_query_parses_and_the_required_metrics_are_shown(board):
    used = set()
    for query in dash.queries(board):
        used |= dash.metric_names(query.expr)
    missing = REQUIRED_METRICS - used
    assert not missing, f"the dashboard shows nothing of {sorted(missing)}"


def test_panels_use_the_provisioned_data_source(board):
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert len(sources) == 1 and sources[0]["type"] == "prometheus"
    uid = sources[0]["uid"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "prometheus" in compose["services"] and sources[0]["url"] == "http://prometheus:9090"
    for panel in dash.iter_panels(board["panels"]):
        for ds in [panel.get("datasource"), *(t.get("datasource") for t in panel.get("targets", []))]:
            if ds:
                assert ds == {"type": "prometheus", "uid": uid}, panel["title"]


def test_dashboard_provider_reads_the_mounted_folder():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "pricer.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.rsplit(":", 2)[:2] if v.count(":") == 2 else v.split(":") for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# --- the extractor that compares the dashboard with a live /metrics

def test_metric_names_of_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(pricer_request_duration_seconds_bucket{route=~"/v1/$x"}[$__rate_interval])))'
        ' / on() group_left sum(vllm:num_requests_waiting) + count({__name__="pricer_made_up_total", job="a"})'
    )
    assert dash.metric_names(expr) == {"pricer_request_duration_seconds_bucket", "vllm:num_requests_waiting", "pricer_made_up_total"}


def test_labels_functions_and_keywords_are_not_metric_names():
    assert dash.metric_names('sum by (route, status) (rate(pricer_requests_total{status=~"5.."}[5m])) > bool 0') == {"pricer_requests_total"}


def test_unparseable_or_unnamed_queries_fail_loudly():
    with pytest.raises(ValueError):
        dash.metric_names("sum(rate(pricer_requests_total[5m])")
    with pytest.raises(ValueError):
        dash.metric_names('sum({__name__=~"pricer_.*"})')


def test_a_made_up_metric_in_the_dashboard_is_reported(board):
    exposed = set()
    for query in dash.queries(board):
        exposed |= dash.metric_names(query.expr)
    assert dash.unknown_metrics(dash.queries(board), exposed) == {}
    bad = copy.deepcopy(board)
    panel = next(p for p in dash.iter_panels(bad["panels"]) if p["type"] != "row")
    panel["targets"].append({"refId": "Z", "expr": "sum(rate(pricer_estimates_made_up_total[5m]))"})
    missing = dash.unknown_metrics(dash.queries(bad), exposed)
    assert list(missing) == ["pricer_estimates_made_up_total"]
    assert missing["pricer_estimates_made_up_total"] == [f"{panel['title']} / Z"]


def test_exposed_names_include_declared_families_without_samples():
    registry = CollectorRegistry()
    Counter("pricer_adapter_loads_total", "loads", ["result"], registry=registry)  # no sample yet
    Histogram("pricer_estimate_dollars", "estimates", registry=registry).observe(12.0)
    Gauge("vllm:kv_cache_usage_perc", "kv", ["engine"], registry=registry).labels("0").set(0.5)
    names = dash.exposed_names(generate_latest(registry).decode())
    assert {"pricer_adapter_loads_total", "pricer_estimate_dollars_bucket", "pricer_estimate_dollars_sum",
            "pricer_estimate_dollars_count", "vllm:kv_cache_usage_perc"} <= names
    # Bare family names of counters and histograms are not series PromQL can select.
    assert not {"pricer_adapter_loads", "pricer_estimate_dollars", "pricer_requests_total"} & names
