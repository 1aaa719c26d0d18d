"""The raw-vLLM side of the benches runs the service's engine for PRICER_ADAPTER_MODE (app.bench.engine_mode):
the offline jobs (`pricer bench cpu`, `catalog`, `compiled`) built for each mode, without running vLLM.
merged: the store's merged folder loaded into an engine started on the base without LoRA, with the
merged engine's own arguments (vLLM's compilation on); lora: as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.bench import engine_mode, raw_offline
from app.bench.cpu import WARM, roofline_rank
from tests.bench.specs import BASE, bare_spec, merged_engine_kwargs

LORA_KEYS = {"enable_lora", "max_lora_rank", "max_loras"}


@pytest.mark.parametrize("settings_mode", ["lora", "merged"])
def test_a_merged_job_starts_the_base_without_lora_as_the_merged_engine_then_loads_the_merged_folder(settings_mode):
    spec = bare_spec(adapter_mode=settings_mode)
    merged = Path("/store/merged/pricer/v1")
    job = raw_offline.job_for(spec, BASE, [[1, 2, 3]], None, "merged", merged)
    assert job["engine_kwargs"] == merged_engine_kwargs(spec, BASE)  # same compilation/eager settings: the engine's own
    assert not LORA_KEYS & set(job["engine_kwargs"]) and "enforce_eager" not in job["engine_kwargs"]
    assert job["engine_kwargs"]["model"] == str(BASE)  # the base's path: the engine's compile cache
    assert job["weights"] == str(merged) and job["lora"] is None
    assert engine_mode.describe("merged", job["engine_kwargs"], "cpu") == "merged, compiled"
    assert spec.settings.adapter_mode == settings_mode  # the caller's spec is left as it was


@pytest.mark.parametrize("settings_mode", ["lora", "merged"])
def test_a_lora_job_is_as_before_whatever_the_settings_say(settings_mode):
    spec = bare_spec(adapter_mode=settings_mode)
    adapter = Path("/store/adapters/pricer/v1")
    job = raw_offline.job_for(spec, BASE, [[1, 2, 3]], adapter)
    assert LORA_KEYS <= set(job["engine_kwargs"]) and job["engine_kwargs"]["enable_lora"] is True
    assert job["lora"] == ["v1", str(adapter)] and "weights" not in job
    assert engine_mode.describe("lora", job["engine_kwargs"], "cpu") == "lora, eager"
    assert engine_mode.describe("lora", job["engine_kwargs"], "cuda") == "lora, compiled"
    assert job["sampling"]["allowed_token_ids"] == [15, 16, 17] and "warm" not in job


def test_the_warm_up_prompts_travel_with_the_job():
    job = raw_offline.job_for(bare_spec(), BASE, [[1, 2]], None, warm=[[7, 8]])
    assert job["warm"] == [[7, 8]] and job["prompts"] == [[1, 2]]
    assert json.loads(json.dumps(job)) == job  # what main reads back


def test_merged_weights_is_the_stores_cached_merge_of_the_served_version(monkeypatch):
    from app.model.hardware import compute_dtype
    from app.store import merged

    calls = []
    monkeypatch.setattr(merged, "cached_merge", lambda *args: calls.append(args) or (Path(args[2]), False))
    settings = bare_spec().settings
    assert engine_mode.merged_weights(settings, BASE, "base") is None and engine_mode.merged_weights(settings, BASE, None) is None
    assert not calls
    folder = engine_mode.merged_weights(settings, BASE, "pricer@v1")
    assert folder == merged.merged_folder(Path("/store"), "pricer", "v1")
    assert calls == [(BASE, Path("/store/adapters/pricer/v1"), folder, compute_dtype(settings, "cpu").dtype)]


@pytest.mark.parametrize("mode", ["lora", "merged"])
def test_run_served_follows_the_settings_mode_and_says_which_engine_ran(monkeypatch, mode):
    adapter, merged = Path("/store/adapters/pricer/v1"), Path("/store/merged/pricer/v1")
    jobs = []
    monkeypatch.setattr(raw_offline, "served_adapter", lambda settings, label, spec=None: (adapter, 0))
    monkeypatch.setattr(engine_mode, "merged_weights", lambda settings, model_dir, label: merged)
    monkeypatch.setattr(raw_offline, "run_job", lambda job: jobs.append(job) or {"requests_per_s": 1.0})
    spec = bare_spec(adapter_mode=mode)
    result = raw_offline.run_served(spec.settings, spec, BASE, [[1]], "pricer@v1", warm=[[2]])
    assert result["mode"] == mode and result["requests_per_s"] == 1.0
    if mode == "merged":
        assert result["engine"] == "merged, compiled" and result["weights"] == str(merged)
        assert jobs[0]["lora"] is None and jobs[0]["weights"] == str(merged)
    else:
        assert result["engine"] == "lora, eager" and result["weights"] is None
        assert jobs[0]["lora"] == ["v1", str(adapter)] and "weights" not in jobs[0]
    assert jobs[0]["warm"] == [[2]]


def test_the_roofline_counts_lora_matmuls_only_in_lora_mode(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 16}))
    assert roofline_rank("lora", tmp_path) == 16
    assert roofline_rank("merged", tmp_path) == 0  # folded into the dense weights
    assert roofline_rank("lora", None) == 0
    assert WARM >= 1


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown adapter mode"):
        engine_mode.spec_in_mode(bare_spec(), "fused")
