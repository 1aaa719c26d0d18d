"""Several real `pricer serve` processes on loopback sharing one store (the fake engine): started
together, each waited on until ready, all killed at the end; plus small HTTP helpers."""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.api.live_server import serve_process

ADMIN_KEY = "fleet-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ITEM = {"title": "Acme premium heavy duty drill model 7", "description": "Cordless, two batteries. Brand Acme."}


@dataclass
class Replica:
    name: str
    url: str
    process: object
    log: Path

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(self.url + path, headers=ADMIN, timeout=30, **kw)

    def post(self, path: str, timeout: float = 60, **kw) -> httpx.Response:
        return httpx.post(self.url + path, headers=ADMIN, timeout=timeout, **kw)

    def estimate(self, timeout_s: float = 30) -> dict:
        r = httpx.post(self.url + "/v1/estimate", json=ITEM, timeout=timeout_s)
        assert r.status_code == 200, r.text
        return r.json()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def replica_env(store: Path, base: Path, name: str, **overrides) -> dict[str, str]:
    env = {
        "PRICER_ENGINE": "fake", "PRICER_MODELS_DIR": str(store), "PRICER_BASE_MODEL": str(base),
        "PRICER_DEFAULT_ADAPTER": "pa", "PRICER_ADAPTER_POLICY": "manual", "PRICER_ESTIMATOR": "llm",
        "PRICER_WATCH_POLL_SECONDS": "0.5", "PRICER_SMOKE_ITEMS": "1", "PRICER_MAX_LORA_RANK": "16",
        "PRICER_REPLICA_ID": name, "PRICER_ADMIN_KEY": ADMIN_KEY, "PRICER_LOG_JSON": "false",
        "PRICER_FLEET_STALE_S": "5",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@contextmanager
def fleet(tmp_path: Path, store: Path, base: Path, names, ready_timeout_s: float = 120.0, **overrides):
    """Start one replica per name at once (each `{name: {setting: value}}` may override), yield them ready."""
    specs = names if isinstance(names, dict) else {n: {} for n in names}
    with ExitStack() as stack:
        started = []
        for name, own in specs.items():
            env = replica_env(store, base, name, **{**overrides, **own})
            url, process, log = stack.enter_context(serve_process(tmp_path, env, wait=False))
            started.append(Replica(name, url, process, log))
        for replica in started:
            wait_ready(replica, ready_timeout_s)
        yield started


def wait_ready(replica: Replica, timeout_s: float) -> None:
    from app.bench.readiness import wait_until_ready

    try:
        wait_until_ready(f"{replica.url}/readyz", timeout_s, replica.process, interval_s=0.1)
    except Exception as e:
        raise AssertionError(f"{replica.name}: {e}:\n{replica.log_text()[-3000:]}") from None


def until(predicate, timeout_s: float, interval_s: float = 0.05):
    """Seconds until `predicate()` was true, or AssertionError at time-out."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not true within {timeout_s} s: {predicate}")
        time.sleep(interval_s)


def serves(replicas, label: str):
    return lambda: all(r.estimate()["adapter"] == label for r in replicas)
