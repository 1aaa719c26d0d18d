"""The balancer in the default stack: Traefik (deploy/traefik/traefik.yml) in front of every api
replica on one port. Traefik's own checker needs its binary (not on PyPI), so the static file is
checked against a JSON schema of the part of Traefik's format it uses (unknown keys rejected, as
Traefik does), the api labels against the dynamic-configuration paths Traefik knows, and both against
the compose file (ports, network, project, the /readyz health check)."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml

from tests.deploy.test_compose import API_SERVICES, compose_config
from tests.deploy.tools import ROOT

TRAEFIK_YML = ROOT / "deploy" / "traefik" / "traefik.yml"
DURATION = r"^[0-9]+(ms|s|m|h)$"

_duration = {"type": "string", "pattern": DURATION}
_address = {"type": "string", "pattern": r"^[^:\s]*:\d+$"}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "entryPoints": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["address"],
                "properties": {
                    "address": _address,
                    "transport": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "respondingTimeouts": {
                                "type": "object", "additionalProperties": False,
                                "properties": {k: _duration for k in ("readTimeout", "writeTimeout", "idleTimeout")},
                            },
                            "lifeCycle": {
                                "type": "object", "additionalProperties": False,
                                "properties": {k: _duration for k in ("requestAcceptGraceTimeout", "graceTimeOut")},
                            },
                        },
                    },
                },
            },
        },
        "providers": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "docker": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "endpoint": {"type": "string", "pattern": "^(unix|tcp)://"},
                        "exposedByDefault": {"type": "boolean"},
                        "network": {"type": "string"},
                        "constraints": {"type": "string"},
                        "watch": {"type": "boolean"},
                    },
                },
            },
        },
        "ping": {"type": "object", "additionalProperties": False, "properties": {"entryPoint": {"type": "string"}}},
        "metrics": {
            "type": "object", "additionalProperties": False,
            "properties": {"prometheus": {"type": "object", "additionalProperties": False,
                                          "properties": {"entryPoint": {"type": "string"}}}},
        },
        "log": {"type": "object", "additionalProperties": False,
                "properties": {"level": {"enum": ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC"]}}},
    },
}
# The label paths Traefik's docker provider reads that the api services use (dynamic configuration).
LABEL_PATHS = {
    r"traefik\.enable": r"true|false",
    r"traefik\.http\.routers\.\w+\.rule": r".+",
    r"traefik\.http\.routers\.\w+\.entrypoints": r"[\w,]+",
    r"traefik\.http\.routers\.\w+\.service": r"\w+",
    r"traefik\.http\.services\.\w+\.loadbalancer\.server\.port": r"\d+",
    r"traefik\.http\.services\.\w+\.loadbalancer\.healthcheck\.path": r"/\S*",
    r"traefik\.http\.services\.\w+\.loadbalancer\.healthcheck\.(interval|timeout)": DURATION[1:-1],
}


@pytest.fixture(scope="module")
def traefik() -> dict:
    return yaml.safe_load(TRAEFIK_YML.read_text())


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    return compose_config(tmp_path_factory.mktemp("compose-lb"))


def test_the_schema_rejects_what_traefik_would():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"entryPoints": {"web": {"adress": ":8000"}}}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"providers": {"docker": {"exposedbydefault": False}}}, SCHEMA)


def test_traefik_yml_is_valid(traefik):
    jsonschema.validate(traefik, SCHEMA)


def test_the_balancer_is_in_the_default_stack_on_one_port(tmp_path, config, traefik):
    default = compose_config(tmp_path, profiles=())
    assert "lb" in default["services"]
    lb = config["services"]["lb"]
    assert re.fullmatch(r"traefik:v\d+(\.\d+)*", lb["image"])
    [port] = [p for p in lb["ports"] if p["target"] == 8000]  # the public one; the admin one: test below
    assert port["published"] == "8000"
    assert traefik["entryPoints"]["web"]["address"] == f":{port['target']}"
    assert lb.get("depends_on") is None, "the lb must not pull the GPU api into `up -d lb api-cpu`"
    mounts = {v["target"]: v for v in lb["volumes"]}
    assert mounts["/var/run/docker.sock"]["read_only"] is True
    assert mounts["/etc/traefik/traefik.yml"]["read_only"] is True
    assert "--configFile=/etc/traefik/traefik.yml" in lb["command"]
    assert "traefik" in lb["healthcheck"]["test"] and "ping" in traefik


def test_the_balancer_finds_only_this_projects_replicas(config, traefik):
    docker = traefik["providers"]["docker"]
    assert docker["exposedByDefault"] is False
    project = config["name"]
    assert docker["network"] == f"{project}_default"
    assert f"`com.docker.compose.project`,`{project}`" in docker["constraints"]


@pytest.mark.parametrize("service", API_SERVICES)
def test_every_api_replica_is_balanced_on_readyz(config, traefik, service):
    spec = config["services"][service]
    labels = spec["labels"]
    for key, value in labels.items():
        if not key.startswith("traefik."):
            continue
        matches = [pattern for pattern, values in LABEL_PATHS.items() if re.fullmatch(pattern, key)]
        assert matches, f"{service}: {key} is not a label this file's checks know"
        assert re.fullmatch(LABEL_PATHS[matches[0]], value), f"{service}: {key}={value!r}"
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.services.pricer.loadbalancer.healthcheck.path"] == "/readyz"
    assert spec["healthcheck"]["test"][-1].count("/readyz") == 1  # Docker's check: unhealthy ones are left out too
    assert labels["traefik.http.services.pricer.loadbalancer.server.port"] == spec["environment"]["PRICER_PORT"]
    assert set(labels["traefik.http.routers.pricer.entrypoints"].split(",")) <= set(traefik["entryPoints"])
    interval = int(labels["traefik.http.services.pricer.loadbalancer.healthcheck.interval"].rstrip("s"))
    assert interval <= 5, "a replica that stops being ready leaves the rotation within seconds"


@pytest.mark.parametrize("service", API_SERVICES)
def test_the_public_entry_point_never_routes_the_admin_paths(config, traefik, service):
    """The routers' rules, evaluated on the service's own admin prefixes: on `web` (published for clients)
    every admin path is excluded; on `admin` (its own port, loopback) only the admin paths are routed."""
    from app.api.auth import ADMIN_PREFIXES

    labels = config["services"][service]["labels"]
    routers = {key.split(".")[3]: None for key in labels if key.startswith("traefik.http.routers.")}
    assert set(routers) == {"pricer", "admin"}

    def routed(router: str, path: str) -> bool:
        """Traefik's rule for this router: PathPrefix(`/`), optionally `&& !PathRegexp(`...`)`, or PathRegexp alone."""
        rule = labels[f"traefik.http.routers.{router}.rule"]
        terms = [t.strip() for t in rule.split("&&")]
        for term in terms:
            negate, term = term.startswith("!"), term.lstrip("!")
            kind, argument = re.fullmatch(r"(PathPrefix|PathRegexp)\(`([^`]*)`\)", term).groups()
            hit = path.startswith(argument) if kind == "PathPrefix" else re.match(argument, path) is not None
            if hit == negate:
                return False
        return True

    admin_paths = [p + suffix for p in ADMIN_PREFIXES for suffix in ("", "/x/20260101-000000/activate")]
    assert admin_paths and not any(routed("pricer", p) for p in admin_paths)
    assert all(routed("admin", p) for p in admin_paths)
    for path in ("/v1/estimate", "/v1/estimate/batch", "/v1/ensemble", "/readyz", "/metrics", "/docs"):
        assert routed("pricer", path) and not routed("admin", path), path
    assert labels["traefik.http.routers.pricer.entrypoints"] == "web"
    assert labels["traefik.http.routers.admin.entrypoints"] == "admin"
    assert labels["traefik.http.routers.admin.service"] == "pricer"
    [admin_port] = [p for p in config["services"]["lb"]["ports"] if f":{p['target']}" == traefik["entryPoints"]["admin"]["address"]]
    assert admin_port["host_ip"] == "127.0.0.1"
