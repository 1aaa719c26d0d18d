"""`pricer bench cpu` on the tiny model: the dtype, the roofline and both engines' rates, real vLLM."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.model.item_files import write_items
from tests.factories import make_items


@pytest.mark.vllm
def test_bench_cpu_reports_the_roofline_and_both_engines(tmp_path, tiny_model_dir, monkeypatch):
    data = tmp_path / "items.jsonl"
    write_items(data, make_items(12, seed=5))
    env = dict(PRICER_BASE_MODEL=str(tiny_model_dir), PRICER_MODELS_DIR=str(tiny_model_dir.parent.parent),
               PRICER_DEFAULT_ADAPTER="", PRICER_MAX_MODEL_LEN="512", PRICER_PROMPT_TOKEN_BUDGET="400",
               PRICER_MAX_NUM_SEQS="16", PRICER_MAX_LORA_RANK="16", PRICER_MAX_LORAS="1", PRICER_DEVICE="cpu",
               PRICER_WATCH_ADAPTERS="false", PRICER_INDEX_DIR=str(tmp_path / "no-index"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["bench", "cpu", "--data", str(data), "--requests", "12", "--matmul-seconds", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["dtype"] in ("bfloat16", "float32") and report["cpu"]["isa"]
    assert report["matmul_gflops"]["float32"]["1_core"] > 0
    assert report["gflop_per_request"] > 0 and report["roofline_requests_per_s"] > 0
    assert report["llm_path"]["label"] == "base" and report["llm_path"]["requests_per_s"] > 0
    assert report["raw_vllm"]["requests"] == 12 and report["raw_vllm"]["requests_per_s"] > 0
    assert report["llm_path_vs_raw"] > 0
    assert "of the roofline" in result.output
