"""The `http` estimator against a real socket-served app (fake engine): prices in order, the key
sent, item texts reaching the engine exactly as curated, retries on 429, errors explained."""

from __future__ import annotations

import json

import pytest

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine
from app.estimators.base import EstimatorOptions, create
from app.estimators.http import HttpEstimator, ServiceError
from app.model.items import Item
from app.model.text import compose_text
from tests.api.live_server import live_server
from tests.factories import make_items


@pytest.fixture
def store(tmp_path):
    base = tmp_path / "base" / "fake"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    return tmp_path


def _settings(store, **overrides) -> Settings:
    values = dict(models_dir=store, base_model=str(store / "base" / "fake"), watch_adapters=False, default_adapter=None)
    return Settings(**(values | overrides))


def _curated(title: str, body: str) -> Item:
    return Item(title=title, price=10.0, text=compose_text(title, body))


def test_prices_items_in_order_through_the_batch_route(store):
    engine = FakeEngine(model_dir=store / "base" / "fake")
    app = create_app(_settings(store, api_key="k1"), engine)
    items = make_items(5) + [_curated("Odd: [title] with \"quotes\"", "body: with {braces}, and 12345678 codes")]
    with live_server(app) as url:
        estimator = create("http", EstimatorOptions(settings=Settings(api_key="k1"), url=url))
        estimator.batch_size = 4
        prices = estimator.predict(items)
        estimator.close()
    sent = [text for texts, _ in engine.calls for text in texts]
    assert sent == [item.text for item in items]  # the service rebuilt exactly the curated text
    assert prices == [FakeEngine.base_price(item.text) for item in items]
    assert len(engine.calls) == 2 and estimator.model == "fake-model"


def test_wrong_key_is_a_clear_error(store):
    app = create_app(_settings(store, api_key="right"), FakeEngine(model_dir=store / "base" / "fake"))
    with live_server(app) as url:
        estimator = HttpEstimator(url, api_key="wrong")
        with pytest.raises(ServiceError, match="401.*wrong"):
            estimator.predict(make_items(1))
        estimator.close()


def test_retries_when_the_service_is_busy(store):
    engine = FakeEngine(model_dir=store / "base" / "fake", latency_s=0.2)
    app = create_app(_settings(store, max_inflight=1), engine)
    with live_server(app) as url:
        import concurrent.futures

        estimators = [HttpEstimator(url, batch_size=2) for _ in range(3)]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda e: e.predict(make_items(2)), estimators))
        for estimator in estimators:
            estimator.close()
    assert all(len(r) == 2 for r in results)
    assert engine.max_in_flight == 1


def test_needs_a_url():
    with pytest.raises(ValueError, match="--url"):
        create("http", EstimatorOptions(settings=Settings()))


def test_intervals_come_through_for_coverage(store):
    engine = FakeEngine(model_dir=store / "base" / "fake")
    app = create_app(_settings(store), engine)
    items = make_items(3)
    with live_server(app) as url:
        estimator = HttpEstimator(url)
        estimates = estimator.estimates(items)
        estimator.close()
    for estimate in estimates:
        assert estimate.low <= estimate.price <= estimate.high and estimate.low < estimate.high


def test_item_body_sends_category_and_details_and_the_model_reads_the_details_once():
    from app.api.schemas import EstimateRequest
    from app.pricing.text import item_text
    from app.estimators.http import item_body
    from app.model.items import Item
    from app.model.text import compose_contents, compose_text

    details = {"Brand": "Acme", "Item Weight": "3.5 pounds", "Best Sellers Rank": {"Tools": 1234}, "Colors": ["red"]}
    curated = compose_text("Acme drill", compose_contents("Cordless, two batteries.", ["2 speeds"], details))
    item = Item(title="Acme drill", category="Tools", price=10.0, text=curated, details=json.dumps(details))
    body = item_body(item)
    # the details as a dict (what features-lr was fitted on), minus a list the API does not take
    assert body["details"] == {"Brand": "Acme", "Item Weight": "3.5 pounds", "Best Sellers Rank": {"Tools": 1234}}
    assert body["category"] == "Tools" and body["title"] == "Acme drill"
    request = EstimateRequest(**body)
    assert item_text(request, 10_000) == curated  # the service does not append them a second time
    no_details = EstimateRequest(**(body | {"details": None}))
    assert item_text(no_details, 10_000) == curated
    # a client's own description without them still gets them appended, as curation does
    fresh = EstimateRequest(title="Acme drill", description="Cordless, two batteries.", features=["2 speeds"], details=body["details"])
    assert "Acme" in item_text(fresh, 10_000).split("2 speeds")[-1]
    assert "category" not in item_body(item.model_copy(update={"category": None}))
    assert "details" not in item_body(item.model_copy(update={"details": None}))
