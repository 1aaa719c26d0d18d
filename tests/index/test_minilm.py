"""app/index/minilm.py: the packaged MiniLM loader and the bounded embedding cache every member shares."""

from __future__ import annotations

import pytest

from app.estimators.base import EstimatorOptions, create
from app.index.minilm import embed, embedder_folder
from tests.factories import make_items


def test_embedder_ships_in_its_package():
    assert (embedder_folder() / "modules.json").is_file()


def test_embeddings_are_normalized_and_cached():
    texts = ["a cheap USB cable", "a premium espresso machine", "a cheap USB cable"]
    vectors = embed(texts)
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    assert (vectors[0] == vectors[2]).all()
    # similar products sit closer than different ones
    other = embed(["USB charging cable, basic", "espresso coffee machine, premium"])
    assert float(vectors[0] @ other[0]) > float(vectors[0] @ other[1])


@pytest.mark.parametrize("name", ["embed-gbm", "embed-rf"])
def test_fit_predict_save_load(name, tmp_path):
    train, test = make_items(30, seed=1), make_items(6, seed=2)
    est = create(name, EstimatorOptions()).fit(train)
    guesses = est.predict(test)
    assert len(guesses) == 6 and all(g > 0 for g in guesses)
    est.save(tmp_path / name)
    loaded = create(str(tmp_path / name), EstimatorOptions())
    assert loaded.predict(test) == pytest.approx(guesses)


def test_the_embedding_cache_is_bounded_and_embeds_each_text_once(monkeypatch):
    """A long-running service's members share the cache: a text is embedded once while it is held,
    and the least recently used vectors go first once CACHE_MAX is reached."""
    from collections import OrderedDict

    import numpy as np

    from app.index import minilm as embeddings

    encoded: list[str] = []

    class Counting:
        def encode(self, texts, **kwargs):
            encoded.extend(texts)
            return np.array([[float(len(t)), 1.0] for t in texts])

    monkeypatch.setattr(embeddings, "load_embedder", lambda: Counting())
    monkeypatch.setattr(embeddings, "_CACHE", OrderedDict())
    monkeypatch.setattr(embeddings, "CACHE_MAX", 2)
    first = embeddings.embed(["a", "bb", "a"])
    assert encoded == ["a", "bb"] and first[0].tolist() == first[2].tolist() == [1.0, 1.0]
    embeddings.embed(["a"])  # "a" is now the most recently used
    embeddings.embed(["ccc"])  # evicts "bb"
    assert encoded == ["a", "bb", "ccc"] and len(embeddings._CACHE) == 2
    embeddings.embed(["a", "bb"])
    assert encoded == ["a", "bb", "ccc", "bb"]
