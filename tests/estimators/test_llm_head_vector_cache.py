"""llm-head's hidden-state features with PRICER_VECTOR_CACHE: a text goes through the (tiny, real)
base model once for a configuration, only the texts not held are computed, rows keep their order,
another configuration never reads them, and knowledge (the same features) shares it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from app.estimators import llm_head

pytestmark = pytest.mark.training  # runs the real transformers model

TEXTS = ["Acme lamp, brass, 40 W", "a much longer description of a kitchen mixer " * 6, "garden hose, 50 ft"]


@pytest.fixture
def computed(monkeypatch):
    """The texts sent through the model, call by call."""
    real = llm_head._compute_features
    calls: list[list[str]] = []

    def counting(model_dir, texts, *args):
        calls.append(list(texts))
        return real(model_dir, texts, *args)

    monkeypatch.setattr(llm_head, "_compute_features", counting)
    return calls


def _features(model_dir, texts, **kwargs):
    return llm_head.hidden_features(model_dir, texts, progress=False, **kwargs)


def test_unset_computes_every_time(tiny_model_dir, computed, monkeypatch):
    monkeypatch.delenv("PRICER_VECTOR_CACHE", raising=False)
    first, second = _features(tiny_model_dir, TEXTS), _features(tiny_model_dir, TEXTS)
    assert computed == [TEXTS, TEXTS] and first.tobytes() == second.tobytes()


def test_a_second_call_computes_nothing_and_returns_the_same_rows(tiny_model_dir, computed, monkeypatch, tmp_path):
    monkeypatch.delenv("PRICER_VECTOR_CACHE", raising=False)
    uncached = _features(tiny_model_dir, TEXTS)
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(tmp_path / "vc.sqlite"))
    cold = _features(tiny_model_dir, TEXTS)
    warm = _features(tiny_model_dir, TEXTS)
    assert computed == [TEXTS, TEXTS]  # the uncached call and the cold one; the warm one none
    assert cold.tobytes() == uncached.tobytes()  # cold: exactly what the uncached call returns
    assert warm.dtype == np.float32 and warm.shape == cold.shape and warm.tobytes() == cold.tobytes()


def test_only_the_texts_not_held_are_computed_in_order(tiny_model_dir, computed, monkeypatch, tmp_path):
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(tmp_path / "vc.sqlite"))
    held = _features(tiny_model_dir, TEXTS[:2])
    mixed = ["new lamp", TEXTS[1], "new kettle, steel, 1.7 l", TEXTS[0]]
    rows = _features(tiny_model_dir, mixed)
    assert computed == [TEXTS[:2], ["new lamp", "new kettle, steel, 1.7 l"]]
    assert rows[1].tobytes() == held[1].tobytes() and rows[3].tobytes() == held[0].tobytes()
    monkeypatch.delenv("PRICER_VECTOR_CACHE")
    fresh = _features(tiny_model_dir, ["new lamp", "new kettle, steel, 1.7 l"])  # the same batch, uncached
    assert rows[[0, 2]].tobytes() == fresh.tobytes()


@pytest.mark.parametrize("change", [{"depth": 1}, {"layers": (1,)}, {"dtype": "float32"}])
def test_another_configuration_reads_none_of_the_rows(tiny_model_dir, computed, monkeypatch, tmp_path, change):
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(tmp_path / "vc.sqlite"))
    _features(tiny_model_dir, TEXTS, depth=2, layers=(-1,), dtype="bfloat16")
    _features(tiny_model_dir, TEXTS, **({"depth": 2, "layers": (-1,), "dtype": "bfloat16"} | change))
    assert computed == [TEXTS, TEXTS]


def test_a_broken_cache_file_is_bypassed_with_one_warning(tiny_model_dir, computed, monkeypatch, tmp_path, caplog):
    path = tmp_path / "vc.sqlite"
    path.write_bytes(b"garbage, not a database " * 100)
    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(path))
    with caplog.at_level(logging.WARNING, logger="app.runtime.vector_cache"):
        first, second = _features(tiny_model_dir, TEXTS), _features(tiny_model_dir, TEXTS)
    assert computed == [TEXTS, TEXTS] and first.tobytes() == second.tobytes()
    assert len([r for r in caplog.records if r.name == "app.runtime.vector_cache"]) == 1


def test_knowledge_reads_its_features_through_the_cache(tiny_model_dir, computed, monkeypatch, tmp_path):
    from app.estimators.knowledge import DEPTH, LAYERS, KnowledgeEstimator
    from tests.factories import make_items

    monkeypatch.setenv("PRICER_VECTOR_CACHE", str(tmp_path / "vc.sqlite"))
    items = make_items(5, seed=3)
    estimator = KnowledgeEstimator(model_dir=tiny_model_dir, depth=DEPTH, layers=LAYERS, dtype="float32")
    first, second = estimator.inputs(items), estimator.inputs(items)
    assert computed == [[item.text for item in items]] and first.tobytes() == second.tobytes()
