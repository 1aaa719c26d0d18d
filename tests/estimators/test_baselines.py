"""random, constant, features-lr, details-gbm and bow-ridge: fit, predict, save, load (no pickle)."""

from __future__ import annotations

import json
import os

import pytest

from app.estimators.base import ESTIMATOR_FILE, EstimatorOptions, create
from app.estimators.features import raw_features, volume_cubic_inches, weight_pounds
from app.estimators.storage import SavedEstimatorError, dump_model, load_model
from app.evaluation import score
from app.model.items import Item
from tests.factories import make_items


@pytest.fixture(scope="module")
def train():
    return make_items(200, seed=1)


@pytest.fixture(scope="module")
def test_items():
    return make_items(40, seed=2)


def test_random_is_seeded_and_independent_of_batching(test_items):
    a = create("random", EstimatorOptions(seed=1))
    b = create("random", EstimatorOptions(seed=2))
    whole = a.predict(test_items)
    assert whole == a.predict(test_items[:10]) + a.predict(test_items[10:])
    assert whole != b.predict(test_items)
    assert all(1 <= g <= 999 and g == int(g) for g in whole)


def test_constant_guesses_the_training_mean(train, test_items):
    est = create("constant", EstimatorOptions()).fit(train)
    mean = sum(i.price for i in train) / len(train)
    assert est.predict(test_items) == [pytest.approx(mean)] * len(test_items)


@pytest.mark.parametrize("name", ["constant", "random", "features-lr", "details-gbm", "bow-ridge"])
def test_saved_estimators_load_and_predict_the_same(name, train, test_items, tmp_path):
    est = create(name, EstimatorOptions(seed=3)).fit(train)
    folder = tmp_path / name
    est.save(folder)
    saved = json.loads((folder / ESTIMATOR_FILE).read_text())
    assert saved["name"] == name
    assert not any(f.endswith((".pkl", ".pickle", ".joblib")) for f in os.listdir(folder))
    loaded = create(str(folder), EstimatorOptions())
    assert loaded.predict(test_items) == pytest.approx(est.predict(test_items))


@pytest.mark.parametrize(("name", "ratio"), [("features-lr", 0.9), ("bow-ridge", 0.7)])
def test_learned_baselines_beat_the_mean_on_text_that_tells_the_price(name, ratio, train, test_items):
    # factories: the title names the kind of product (bow-ridge sees it), the category follows it (features-lr)
    truths = [i.price for i in test_items]
    constant = score(truths, create("constant", EstimatorOptions()).fit(train).predict(test_items))
    learned = create(name, EstimatorOptions()).fit(train).predict(test_items)
    assert all(g >= 0 for g in learned)
    assert score(truths, learned).mean_error < constant.mean_error * ratio


def test_saving_over_an_old_folder_replaces_it_whole(train, tmp_path):
    folder = tmp_path / "model"
    create("constant", EstimatorOptions()).fit(train[:10]).save(folder)
    create("constant", EstimatorOptions()).fit(train).save(folder)
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert create(str(folder), EstimatorOptions()).value == pytest.approx(sum(i.price for i in train) / len(train))


def test_a_failed_save_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="nothing to save"):
        create("bow-ridge", EstimatorOptions()).save(tmp_path / "model")
    assert os.listdir(tmp_path) == []


def test_skops_files_with_foreign_types_are_refused(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.skops"
    dump_model(FunctionTransformer(func=os.system), path)
    with pytest.raises(SavedEstimatorError, match="does not trust"):
        load_model(path)
    with pytest.raises(SavedEstimatorError, match="missing model file"):
        load_model(tmp_path / "absent.skops")


def test_a_trusted_partial_does_not_let_its_function_through(tmp_path):
    import functools

    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.skops"
    dump_model(FunctionTransformer(func=functools.partial(os.system, "true")), path)
    with pytest.raises(SavedEstimatorError, match="posix.system|nt.system"):
        load_model(path)


def test_fit_needs_items():
    with pytest.raises(ValueError, match="no training items"):
        create("constant", EstimatorOptions()).fit([])
    with pytest.raises(ValueError, match="at least 2"):
        create("bow-ridge", EstimatorOptions()).fit(make_items(1))


# --- features parsed from details and text


@pytest.mark.parametrize(
    ("text", "pounds"),
    [("5 pounds", 5.0), ("12 Ounces", 0.75), ("2 kg", 4.40924), ("500 grams", 1.10231), ("no weight", None)],
)
def test_weight_in_pounds(text, pounds):
    assert weight_pounds(text) == (pytest.approx(pounds, rel=1e-4) if pounds else None)


def test_volume_from_dimensions():
    assert volume_cubic_inches("7 x 14.25 x 9 inches") == pytest.approx(7 * 14.25 * 9)
    assert volume_cubic_inches("10 x 10 x 10 cm") == pytest.approx(1000 / 2.54**3)
    assert volume_cubic_inches("nothing here") is None


def test_raw_features_read_details():
    details = {"Item Weight": "5 pounds", "Product Dimensions": "2 x 3 x 4 inches", "Brand": "Moen",
               "Best Sellers Rank": {"Tools": 1000, "Faucets": 10}}
    item = Item(title="t", price=10.0, text="t\nbody", details=json.dumps(details), category=None)
    f = raw_features(item)
    assert f["weight"] == 5.0 and f["volume"] == 24.0 and f["rank"] == 505.0
    assert f["brand"] == "moen" and f["category"] == "unknown" and f["chars"] == len("t\nbody")
