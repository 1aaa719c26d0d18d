"""embed-gbm and embed-rf on the real all-MiniLM-L6-v2 (loaded offline from its package), on a handful of items."""

from __future__ import annotations

import pytest

from app.estimators.base import EstimatorOptions, create
from app.estimators.embeddings import embed, embedder_folder
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
