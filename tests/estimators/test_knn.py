"""The knn estimator: neighbours' prices in log space, never its own label, saved without pickle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.estimators.base import EstimatorOptions, create
from app.estimators.knn import KnnEstimator, aggregate, weighted_quantile
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder


def test_weighted_median_and_mean_by_hand():
    values = np.array([1.0, 2.0, 10.0])
    assert weighted_quantile(values, np.array([1.0, 1.0, 1.0])) == pytest.approx(2.0)
    assert weighted_quantile(values, np.array([1.0, 1.0, 8.0])) > 5.0  # the heavy one pulls the median
    sims = np.array([0.9, 0.9, np.nan])
    assert aggregate(np.array([1.0, 3.0, 99.0]), sims, "mean", 0.0) == pytest.approx(2.0)  # nan slot ignored
    # temperature: the more similar neighbour weighs e^(0.1/0.05) = e^2 times more
    got = aggregate(np.array([1.0, 3.0]), np.array([0.9, 0.8]), "mean", 0.05)
    assert got == pytest.approx((math.e**2 * 1.0 + 3.0) / (math.e**2 + 1))
    assert math.isnan(aggregate(np.array([np.nan]), np.array([np.nan]), "mean", 0.05))


def test_registered_and_validated():
    assert isinstance(create("knn", EstimatorOptions()), KnnEstimator)
    with pytest.raises(ValueError, match="rule"):
        KnnEstimator(rule="mode")
    with pytest.raises(ValueError, match="k must be"):
        KnnEstimator(k=0)
    with pytest.raises(RuntimeError, match="fit it first"):
        KnnEstimator(embedder=FakeEmbedder()).predict(make_items(2))


def test_prices_from_neighbours_and_never_from_itself():
    train = make_items(40, seed=8)
    est = KnnEstimator(k=1, embedder=FakeEmbedder()).fit(train)
    # k=1 on training items: the answer is another item's price (the item itself is excluded)
    own = est.predict(train)
    prices = {i.price for i in train}
    assert all(min(abs(g - p) for p in prices) < 1e-6 for g in own)
    assert sum(abs(g - i.price) < 1e-9 for g, i in zip(own, train, strict=True)) == 0
    # a query that is a near copy of a training item gets that item's price at k=1
    query = train[5].model_copy(update={"text": train[5].text.replace("everyday", "daily")})
    assert est.predict([query])[0] == pytest.approx(train[5].price)


def test_larger_k_averages_in_log_space():
    train = make_items(40, seed=9)
    est = KnnEstimator(k=40, temperature=0.0, embedder=FakeEmbedder()).fit(train)
    stranger = make_items(1, seed=99)[0].model_copy(update={"text": "completely unrelated words here"})
    expected = math.expm1(np.mean(np.log1p([i.price for i in train])))
    assert est.predict([stranger])[0] == pytest.approx(expected, rel=1e-6)


def test_save_and_load_round_trip(tmp_path):
    train, test = make_items(30, seed=10), make_items(5, seed=11)
    est = KnnEstimator(k=3, rule="median", embedder=FakeEmbedder()).fit(train)
    est.save(tmp_path / "knn")
    assert sorted(p.name for p in (tmp_path / "knn" / "index").iterdir()) == ["ann.faiss", "items.jsonl", "manifest.json"]
    from app.estimators.storage import read_meta
    from app.index.index import Index

    assert read_meta(tmp_path / "knn") == {"name": "knn", "k": 3, "rule": "median", "temperature": 0.05, "embedder": "fake-words"}
    loaded = KnnEstimator(k=3, rule="median", embedder=FakeEmbedder())
    loaded.index = Index.load(tmp_path / "knn" / "index", embedder=FakeEmbedder())
    assert loaded.predict(test) == pytest.approx(est.predict(test))


def test_real_minilm_fit_predict_save_load(tmp_path):
    """The registry's knn on the packaged MiniLM, through `create(folder)` as evaluate does."""
    train, test = make_items(30, seed=1), make_items(6, seed=2)
    est = create("knn", EstimatorOptions()).fit(train)
    guesses = est.predict(test)
    assert len(guesses) == 6 and all(g > 0 for g in guesses)
    est.save(tmp_path / "knn")
    assert create(str(tmp_path / "knn"), EstimatorOptions()).predict(test) == pytest.approx(guesses, rel=1e-5)
