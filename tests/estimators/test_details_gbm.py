"""details-gbm: the facts it reads from details, and that its trees follow what a line cannot."""

from __future__ import annotations

import json
import math
import random

import pytest

from app.estimators.base import EstimatorOptions, create
from app.estimators.details_gbm import CATEGORICAL, NUMERIC, detail_facts
from app.evaluation import score
from app.model.items import Item


def _item(details: dict | None, price: float = 10.0, title: str = "Acme widget", category: str | None = None) -> Item:
    return Item(title=title, price=price, text=f"{title}\nbody", category=category,
                details=json.dumps(details) if details is not None else None)


def test_facts_read_ranks_department_country_year_and_size():
    details = {"Item Weight": "2 pounds", "Brand": "Moen", "Country of Origin": " China ",
               "Best Sellers Rank": {"Tools & Home Improvement": 5000, "Faucets": 12},
               "Date First Available": "March 3, 2019", "Is Discontinued By Manufacturer": "No"}
    f = detail_facts(_item(details, category="Tools_and_Home_Improvement"))
    assert f["rank_first"] == 5000.0 and f["rank_last"] == 12.0 and f["ranks"] == 2.0
    assert f["rank_department"] == "Tools & Home Improvement"
    assert f["brand"] == "moen" and f["country"] == "china" and f["category"] == "Tools_and_Home_Improvement"
    assert f["year"] == 2019.0 and f["discontinued"] == 0.0 and f["weight"] == 2.0 and f["detail_keys"] == 6.0
    assert set(f) == set(NUMERIC) | set(CATEGORICAL)


def test_an_item_without_details_has_missing_facts_not_errors():
    f = detail_facts(_item(None))
    assert f["rank_first"] is None and f["rank_department"] is None and f["country"] is None
    assert f["ranks"] == 0.0 and f["detail_keys"] == 0.0


def _ranked_items(n: int, seed: int) -> list[Item]:
    """A rank means opposite things in two departments: a cheap best-seller in Kitchen, an expensive
    one in Tools. The department is only in the details (no category), so a line over the log rank
    and the category cannot price it."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        department = ("Kitchen", "Tools")[i % 2]
        rank = 10 ** rng.uniform(1, 6)
        position = math.log10(rank) / 6
        price = 20 + 400 * (position if department == "Kitchen" else 1 - position)
        details = {"Best Sellers Rank": {department: int(rank)}, "Brand": f"brand{i % 5}"}
        items.append(_item(details, price=round(price * rng.uniform(0.95, 1.05), 2), title=f"Acme part {i}"))
    return items


def test_it_follows_a_rank_whose_meaning_depends_on_its_department():
    train, test = _ranked_items(400, seed=1), _ranked_items(100, seed=2)
    truths = [i.price for i in test]
    gbm = create("details-gbm", EstimatorOptions()).fit(train).predict(test)
    line = create("features-lr", EstimatorOptions()).fit(train).predict(test)
    assert score(truths, gbm).mean_error < 0.5 * score(truths, line).mean_error


def test_unseen_brands_departments_and_bare_items_still_get_a_price(tmp_path):
    est = create("details-gbm", EstimatorOptions()).fit(_ranked_items(200, seed=3))
    assert est.levels["rank_department"] == ["Kitchen", "Tools"]
    strange = [_item({"Best Sellers Rank": {"Garden": 50}, "Brand": "nobody"}), _item(None), _item({})]
    prices = est.predict(strange)
    assert all(math.isfinite(p) and p >= 0 for p in prices)
    est.save(tmp_path / "m")
    assert create(str(tmp_path / "m"), EstimatorOptions()).predict(strange) == pytest.approx(prices)


def test_training_items_must_state_something():
    with pytest.raises(ValueError, match="at least 2"):
        create("details-gbm", EstimatorOptions()).fit([])
    bare = create("details-gbm", EstimatorOptions()).fit([_item(None, price=p) for p in (5.0, 50.0, 20.0)])
    assert "rank_first" not in bare.columns and "chars" in bare.columns  # columns never seen are dropped


def test_fit_trains_on_the_same_matrix_that_predict_reads(monkeypatch):
    """fit parses each item once and drops unseen columns itself: the trees must see exactly what
    `inputs` gives them at prediction time."""
    import numpy as np

    from app.estimators.details_gbm import DetailsGbmEstimator

    items = _ranked_items(60, seed=4) + [_item(None, price=7.0), _item({"Country of Origin": "Italy"}, price=70.0)]
    seen = {}
    build = DetailsGbmEstimator.build_model

    def recording(self):
        model = build(self)
        fit = model.fit
        model.fit = lambda X, y: (seen.setdefault("X", np.array(X)), fit(X, y))[1]
        return model

    monkeypatch.setattr(DetailsGbmEstimator, "build_model", recording)
    est = create("details-gbm", EstimatorOptions()).fit(items)
    assert "year" not in est.columns  # no item states a date: the column is dropped before training
    assert np.array_equal(seen["X"], est.inputs(items), equal_nan=True)
