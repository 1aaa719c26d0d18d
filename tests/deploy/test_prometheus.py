"""deploy/prometheus/prometheus.yml. Prometheus's own checker (promtool) is not on PyPI and Debian's
`prometheus` package is not something CI installs, so the file is checked against a JSON schema of the
part of Prometheus's configuration format it uses (unknown keys rejected, as Prometheus does), and
against the compose file it runs beside."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml

from tests.deploy.tools import ROOT

PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DURATION = r"^((([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?|0)$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"

_duration = {"type": "string", "pattern": DURATION, "minLength": 1}
_labels = {"type": "object", "propertyNames": {"pattern": LABEL_NAME}, "additionalProperties": {"type": "string"}}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "global": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "scrape_interval": _duration,
                "scrape_timeout": _duration,
                "evaluation_interval": _duration,
                "external_labels": _labels,
            },
        },
        "rule_files": {"type": "array", "items": {"type": "string"}},
        "scrape_configs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["job_name"],
                "properties": {
                    "job_name": {"type": "string", "minLength": 1},
                    "metrics_path": {"type": "string", "pattern": "^/"},
                    "scheme": {"enum": ["http", "https"]},
                    "scrape_interval": _duration,
                    "scrape_timeout": _duration,
                    "honor_labels": {"type": "boolean"},
                    "static_configs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["targets"],
                            "properties": {
                                "targets": {"type": "array", "items": {"type": "string", "pattern": r"^[^/\s:]+:\d+$"}},
                                "labels": _labels,
                            },
                        },
                    },
                    "dns_sd_configs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["names"],
                            "properties": {
                                "names": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                                "type": {"enum": ["SRV", "A", "AAAA", "MX", "NS"]},
                                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                "refresh_interval": _duration,
                            },
                            "if": {"properties": {"type": {"enum": ["A", "AAAA", "MX", "NS"]}}, "required": ["type"]},
                            "then": {"required": ["port"]},
                        },
                    },
                },
            },
        },
    },
}


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration))


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(PROMETHEUS_YML.read_text())


def test_matches_the_configuration_schema(config):
    jsonschema.validate(config, SCHEMA)


def test_schema_rejects_what_prometheus_rejects():
    for bad in (
        {"scrape_configs": [{"job_name": "x", "scrape_intervall": "5s"}]},
        {"scrape_configs": [{"job_name": "x", "scrape_interval": "5 seconds"}]},
        {"scrape_configs": [{"job_name": "x", "dns_sd_configs": [{"names": ["api"], "type": "A"}]}]},
        {"scrape_configs": [{"job_name": "x", "static_configs": [{"targets": ["http://api:8000/metrics"]}]}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_job_names_are_unique_and_timeouts_fit_intervals(config):
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names))
    default_interval = config.get("global", {}).get("scrape_interval", "1m")
    for job in config["scrape_configs"]:
        interval = seconds(job.get("scrape_interval", default_interval))
        timeout = seconds(job.get("scrape_timeout", config.get("global", {}).get("scrape_timeout", "10s")))
        assert timeout <= interval, job["job_name"]


def test_scrapes_every_api_replica_under_the_compose_alias(config):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "pricer-api")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    sd = job["dns_sd_configs"][0]
    assert sd["type"] == "A", "one A record per replica: each replica is scraped on its own"
    for service in ("api", "api-cpu"):
        aliases = compose["services"][service]["networks"]["default"]["aliases"]
        assert set(sd["names"]) <= set(aliases)
        assert str(sd["port"]) in compose["services"][service]["expose"]


def test_promtool_accepts_the_file_where_installed():
    """Prometheus's own checker where it is installed (Debian: apt-get install prometheus); the schema
    above is what runs everywhere else."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (it is not on PyPI)")
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
