"""app/index/minilm.py with PRICER_VECTOR_CACHE: the real MiniLM embeds a text once across processes
(the in-memory LRU emptied stands for a new process), only the texts not held are embedded, and a
broken cache file changes nothing but one warning."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pytest

from app.index import minilm


@pytest.fixture
def encoded(monkeypatch):
    """The texts the real model is asked to encode, call by call."""
    real = minilm.load_embedder()
    calls: list[list[str]] = []

    class Counting:
        def encode(self, texts, **kwargs):
            calls.append(list(texts))
            return real.encode(texts, **kwargs)

    monkeypatch.setattr(minilm, "load_embedder", lambda: Counting())
    monkeypatch.setattr(minilm, "_CACHE", OrderedDict())
    return calls


def _new_process(monkeypatch):
    monkeypatch.setattr(minilm, "_CACHE", OrderedDict())


TEXTS = ["a cheap USB cable", "a premium espresso machine", "garden hose, 50 ft"]


def test_unset_opens_no_cache(encoded, monkeypatch):
    from app.runtime import vector_cache

    def refuse(path):
        raise AssertionError(f"a vector cache was opened at {path}")

    monkeypatch.delenv("PRICER_VECTOR_CACHE", raising=False)
    monkeypatch.setattr(vector_cache, "VectorCache", refuse)
    minilm.embed(TEXTS)
    _new_process(monkeypatch)
    minilm.embed(TEXTS)
    assert encoded == [TEXTS, TEXTS]


def test_a_second_process_embeds_nothing_and_gets_the_same_vectors(encoded, monkeypatch, tmp_path):
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(tmp_path / "vc.sqlite"))
    cold = minilm.embed(TEXTS)
    assert encoded == [TEXTS]
    _new_process(monkeypatch)
    warm = minilm.embed(TEXTS)
    assert encoded == [TEXTS]
    assert warm.dtype == cold.dtype == np.float32 and warm.tobytes() == cold.tobytes()


def test_only_the_texts_not_held_are_embedded_and_the_order_is_kept(encoded, monkeypatch, tmp_path):
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(tmp_path / "vc.sqlite"))
    held = minilm.embed(TEXTS[:2])
    _new_process(monkeypatch)
    mixed = ["new lamp, brass", TEXTS[1], "new kettle", TEXTS[0], "new lamp, brass"]
    vectors = minilm.embed(mixed)
    assert encoded == [TEXTS[:2], ["new lamp, brass", "new kettle"]]
    assert vectors[1].tobytes() == held[1].tobytes() and vectors[3].tobytes() == held[0].tobytes()
    fresh = minilm.load_embedder().encode(["new lamp, brass", "new kettle"], normalize_embeddings=True)
    assert np.allclose(vectors[[0, 2, 4]], fresh[[0, 1, 0]], atol=1e-6)


def test_a_broken_cache_file_is_bypassed_with_one_warning(encoded, monkeypatch, tmp_path, caplog):
    path = tmp_path / "vc.sqlite"
    path.write_bytes(b"garbage, not a database " * 100)
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(path))
    with caplog.at_level(logging.WARNING, logger="app.runtime.vector_cache"):
        first = minilm.embed(TEXTS)
        _new_process(monkeypatch)
        second = minilm.embed(TEXTS)
    assert encoded == [TEXTS, TEXTS] and np.allclose(first, second, atol=1e-6)
    assert len([r for r in caplog.records if r.name == "app.runtime.vector_cache"]) == 1
