"""`pricer bench --compare-vllm` stopped by SIGTERM mid-run (as CI or `timeout` stops it) leaves no
vLLM process behind: the real vLLM server on the tiny model, the service on the fake engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine
from app.model.item_files import write_items
from tests.api.live_server import live_server
from tests.factories import make_items

ROOT = Path(__file__).resolve().parents[2]


def _vllm_processes(root: psutil.Process) -> list[psutil.Process]:
    try:
        found = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in found if _is_vllm(p)]


def _is_vllm(process: psutil.Process) -> bool:
    try:
        return "vllm" in " ".join(process.cmdline()) or process.name().startswith("VLLM")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


@pytest.mark.vllm
def test_a_bench_stopped_by_sigterm_leaves_no_vllm_process(tmp_path, tiny_model_dir):
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(8, seed=3))
    settings = Settings(_env_file=None, models_dir=tmp_path, base_model=str(tiny_model_dir), watch_adapters=False,
                        default_adapter=None)
    env = dict(os.environ, PRICER_BASE_MODEL=str(tiny_model_dir), PRICER_MODELS_DIR=str(tiny_model_dir.parent.parent),
               PRICER_MAX_MODEL_LEN="512", PRICER_PROMPT_TOKEN_BUDGET="400", PRICER_MAX_NUM_SEQS="8",
               PRICER_MAX_LORA_RANK="16", PRICER_MAX_LORAS="1", PRICER_DEVICE="cpu")
    with live_server(create_app(settings, FakeEngine(model_dir=tiny_model_dir, latency_s=0.01))) as url:
        bench = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "bench", "--url", url, "--data", str(data), "--requests", "1000",
             "--compare-vllm", "--vllm-log", str(tmp_path / "raw-vllm.log")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        root = psutil.Process(bench.pid)
        seen: dict[int, psutil.Process] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and bench.poll() is None:  # wait until vLLM's server is up and computing
            seen.update({p.pid: p for p in _vllm_processes(root)})
            if len(seen) >= 2:  # the API server and its engine core
                break
            time.sleep(0.2)
        assert bench.poll() is None and seen, f"vLLM's server did not start; see {tmp_path / 'raw-vllm.log'}"
        time.sleep(2.0)
        seen.update({p.pid: p for p in _vllm_processes(root)})
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 128 + signal.SIGTERM
    _, alive = psutil.wait_procs(list(seen.values()), timeout=30)
    assert [p.pid for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
