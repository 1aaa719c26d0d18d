"""The merged-folder cache the merged engine keeps (app/store/merged.py): built atomically with its
source recorded, reused while the adapter, the base and the dtype are the same, merged again when the
adapter is rewritten, and a merge that cannot work raises without leaving anything behind. Also
which engine PRICER_ADAPTER_MODE builds, and its engine arguments (no LoRA in merged mode)."""

from __future__ import annotations

import pytest

from app.store.merged import SOURCE_FILE, cached_merge, merged_folder, read_source
from tests.conftest import tiny_engine_settings
from tests.factories import make_lora_adapter


def test_cached_merge_reuses_and_rebuilds(tiny_model_dir, tmp_path):
    adapter = make_lora_adapter(tiny_model_dir, tmp_path / "adapters", "m", "v1", rank=4, seed=1)
    dest = merged_folder(tmp_path, "m", "v1")
    folder, built = cached_merge(tiny_model_dir, adapter, dest, "bfloat16")
    assert built and folder == dest and (dest / "config.json").is_file() and (dest / SOURCE_FILE).is_file()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no build folder left
    source = read_source(dest)
    assert source["dtype"] == "bfloat16" and source["adapter_fingerprint"].startswith("sha256:")
    assert cached_merge(tiny_model_dir, adapter, dest, "bfloat16") == (dest, False)
    assert cached_merge(tiny_model_dir, adapter, dest, "float32")[1]  # another dtype: merged again
    make_lora_adapter(tiny_model_dir, tmp_path / "adapters", "m", "v1", rank=4, seed=2)  # rewritten in place
    folder, built = cached_merge(tiny_model_dir, adapter, dest, "float32")
    assert built and read_source(dest)["adapter_fingerprint"] != source["adapter_fingerprint"]


def test_a_merge_that_cannot_work_raises_and_leaves_nothing(tiny_model_dir, tokenizer_dir, tmp_path):
    from tests.tiny_model import build_tiny_llama

    wider = build_tiny_llama(tmp_path / "wider" / "tiny", tokenizer_dir, hidden=256)
    adapter = make_lora_adapter(wider, tmp_path / "adapters", "w", "v1", rank=4)
    dest = merged_folder(tmp_path, "w", "v1")
    with pytest.raises(Exception, match="size mismatch|shape"):
        cached_merge(tiny_model_dir, adapter, dest)
    assert not dest.exists() and not list(dest.parent.glob(".*"))


def test_adapter_mode_picks_the_engine_and_its_arguments(tiny_model_dir):
    from app.engine.factory import build_engine
    from app.engine.merged import MergedVllmEngine
    from app.engine.vllm_engine import VllmEngine
    from app.model.spec import ServingSpec

    lora = build_engine(tiny_engine_settings(tiny_model_dir))
    merged = build_engine(tiny_engine_settings(tiny_model_dir, adapter_mode="merged"))
    assert type(lora) is VllmEngine and type(merged) is MergedVllmEngine
    keys = {"enable_lora", "max_lora_rank", "max_loras"}
    spec = ServingSpec.load(lora.settings, tiny_model_dir)
    assert keys <= set(spec.engine_kwargs(tiny_model_dir, device="cpu"))
    spec = ServingSpec.load(merged.settings, tiny_model_dir)
    kwargs = spec.engine_kwargs(tiny_model_dir, device="cpu")
    assert not keys & set(kwargs) and "compilation_config" not in kwargs  # vLLM's default: compiled
