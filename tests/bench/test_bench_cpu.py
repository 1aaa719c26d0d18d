"""`pricer bench cpu` on the tiny model: the dtype, the roofline and both engines' rates, real vLLM;
both sides in the engine of PRICER_ADAPTER_MODE (merged: compiled, no LoRA)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.model.item_files import write_items
from tests.factories import make_items


@pytest.mark.vllm
@pytest.mark.parametrize("mode", ["lora", "merged"])
def test_bench_cpu_reports_the_roofline_and_both_engines(tmp_path, tiny_model_dir, monkeypatch, mode):
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(16, seed=5))  # 4 to warm up, 12 timed
    env = dict(PRICER_BASE_MODEL=str(tiny_model_dir), PRICER_MODELS_DIR=str(tiny_model_dir.parent.parent),
               PRICER_DEFAULT_ADAPTER="", PRICER_MAX_MODEL_LEN="512", PRICER_PROMPT_TOKEN_BUDGET="400",
               PRICER_MAX_NUM_SEQS="16", PRICER_MAX_LORA_RANK="16", PRICER_MAX_LORAS="1", PRICER_DEVICE="cpu",
               PRICER_WATCH_ADAPTERS="false", PRICER_INDEX_DIR=str(tmp_path / "no-index"), PRICER_ADAPTER_MODE=mode)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["bench", "cpu", "--data", str(data), "--requests", "12", "--matmul-seconds", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    # the JSON line; vLLM's loggers may write after it (a handler bound to an earlier invocation's stream)
    report = json.loads(next(line for line in reversed(result.output.splitlines()) if line.startswith("{")))
    assert report["dtype"] in ("bfloat16", "float32") and report["cpu"]["isa"]
    assert report["matmul_gflops"]["float32"]["1_core"] > 0
    assert report["gflop_per_request"] > 0 and report["roofline_requests_per_s"] > 0
    assert report["llm_path"]["label"] == "base" and report["llm_path"]["requests_per_s"] > 0
    assert report["raw_vllm"]["requests"] == 12 and report["raw_vllm"]["requests_per_s"] > 0
    assert report["llm_path_vs_raw"] > 0
    engine = "lora, eager" if mode == "lora" else "merged, compiled"
    assert report["adapter_mode"] == mode and report["llm_path"]["engine"] == report["raw_vllm"]["engine"] == engine
    assert f"raw vLLM ({engine})" in result.output
    assert "of the roofline" in result.output
