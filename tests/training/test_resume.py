"""A run killed between saves resumes from its last trainer checkpoint: the steps continue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from app.adapters.manifest import Manifest
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.training


def _command(config) -> list[str]:
    return [
        sys.executable, "-m", "app.cli", "train", "--data", str(config.data[0]), "--val", str(config.val),
        "--base", config.base, "--store", str(config.store), "--name", config.name,
        "--work-dir", str(config.work_dir), "--r", "8", "--alpha", "16", "--lr", "5e-3", "--batch", "4",
        "--grad-accum", "1", "--max-steps", "6", "--save-steps", "2", "--max-length", "96", "--val-items", "0",
    ]


def test_a_killed_run_resumes_where_it_saved(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir)
    env = dict(os.environ, PRICER_MODELS_DIR=str(config.store))
    proc = subprocess.Popen(_command(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        for line in proc.stdout:
            if "exported adapter version" in line:
                os.killpg(proc.pid, signal.SIGKILL)  # killed right after its first save
                break
            assert time.monotonic() < deadline, "no save within 240 s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    adapter_root = config.store / "adapters" / config.name
    first = sorted(p for p in adapter_root.iterdir() if not p.name.startswith("."))
    assert [Manifest.read(v).steps for v in first] == [2]
    assert (config.work_dir / "checkpoint-2").is_dir()

    done = subprocess.run(_command(config), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    versions = sorted(p for p in adapter_root.iterdir() if not p.name.startswith("."))
    # the resumed run went on from step 2: it saved 4 and 6, never step 2 again
    assert [Manifest.read(v).steps for v in versions] == [2, 4, 6]
    assert "Resuming" in done.stdout + done.stderr or (config.work_dir / "checkpoint-6").is_dir()


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_model_dir):
    from app.training.run import TrainingError, check_resume

    config = tiny_config(tmp_path, tiny_model_dir)
    config.work_dir.mkdir(parents=True)
    (config.work_dir / "checkpoint-2").mkdir()
    (config.work_dir / "run.json").write_text(config.model_dump_json())
    assert check_resume(config.work_dir, config.model_copy(update={"max_steps": 10})) is True
    with pytest.raises(TrainingError, match="learning_rate"):
        check_resume(config.work_dir, config.model_copy(update={"learning_rate": 1e-4}))
