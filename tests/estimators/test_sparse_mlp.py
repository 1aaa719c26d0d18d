"""The sparse MLP learns prices from text, is seeded, and round-trips without pickle."""

from __future__ import annotations

import json

import pytest

from app.estimators.base import EstimatorOptions, create
from app.estimators.sparse_mlp import MlpConfig, SparseMlpEstimator
from app.estimators.weights import origin_group, parse_weights, sample_weights
from app.evaluation.metrics import score
from app.model.items import Item
from tests.factories import make_items

SMALL = MlpConfig(hidden=(32, 16), epochs=30, batch_size=16, lr=1e-2, seeds=2, min_df=1)


@pytest.fixture(scope="module")
def fitted():
    return SparseMlpEstimator(SMALL, seed=1).fit(make_items(200, seed=1))


def test_learns_better_than_the_mean(fitted):
    train, test = make_items(200, seed=1), make_items(60, seed=2)
    mean = sum(i.price for i in train) / len(train)
    truths = [i.price for i in test]
    assert score(truths, fitted.predict(test)).mean_error < 0.6 * score(truths, [mean] * len(test)).mean_error


def test_is_seeded():
    train, test = make_items(80, seed=1), make_items(10, seed=2)
    config = MlpConfig(hidden=(16, 8), epochs=3, batch_size=16, seeds=1, min_df=1)
    first = SparseMlpEstimator(config, seed=3).fit(train).predict(test)
    assert SparseMlpEstimator(config, seed=3).fit(train).predict(test) == first
    assert SparseMlpEstimator(config, seed=4).fit(train).predict(test) != first


def test_save_and_load_give_the_same_answers(fitted, tmp_path):
    folder = tmp_path / "mlp"
    fitted.save(folder)
    assert not list(folder.glob("*.pkl"))
    meta = json.loads((folder / "estimator.json").read_text())
    assert meta["name"] == "sparse-mlp" and meta["config"]["seeds"] == 2
    loaded = create(str(folder), EstimatorOptions())
    test = make_items(20, seed=3)
    assert loaded.predict(test) == pytest.approx(fitted.predict(test), rel=5e-3)  # float16 on disk


def test_origin_weights():
    def item(origin):
        return Item(title="t", price=1.0, text="t", origin=origin)

    assert [origin_group(item(o)) for o in ("course-test:3", "course-train:1", "lite-appliances-test:2", "x/y.pkl", None)] == \
        ["course", "course", "lite", "extra", "unknown"]
    weights = parse_weights("extra=0.25, lite=0.5")
    assert sample_weights([item("course-test:1"), item("x"), item("lite-a")], weights) == [1.0, 0.25, 0.5]
    with pytest.raises(ValueError, match="unknown origin group 'nope'"):
        parse_weights("nope=1")


def test_a_zero_weight_group_is_ignored():
    """Items weighted 0 must not move the fit: a poisoned 'extra' group changes nothing."""
    train, test = make_items(60, seed=1), make_items(10, seed=2)
    poison = [Item(title=i.title, price=i.price * 50, text=i.text, origin="someone/else.pkl") for i in make_items(60, seed=5)]
    config = MlpConfig(hidden=(16, 8), epochs=5, batch_size=16, seeds=1, min_df=1, origin_weights={"extra": 0.0})
    clean = SparseMlpEstimator(config, seed=0).fit(train).predict(test)
    ignored = SparseMlpEstimator(config, seed=0).fit(train + poison).predict(test)
    config_w = MlpConfig(**{**config.__dict__, "origin_weights": {"extra": 1.0}})
    poisoned = SparseMlpEstimator(config_w, seed=0).fit(train + poison).predict(test)
    assert sum(ignored) == pytest.approx(sum(clean), rel=0.25)
    assert sum(poisoned) > 2 * sum(clean)
