"""The `http` estimator against a real socket-served app (fake engine): prices in order, the key
sent, item texts reaching the engine exactly as curated, retries on 429, errors explained."""

from __future__ import annotations

import pytest

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine
from app.estimators.base import EstimatorOptions, create
from app.estimators.http import HttpEstimator, ServiceError
from app.items import Item, compose_text
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


def test_item_body_sends_the_category_and_no_second_copy_of_details():
    from app.estimators.http import item_body
    from app.items import Item

    item = Item(title="Acme drill", category="Tools", price=10.0, text="Acme drill\nCordless. Brand Acme", details='{"Brand": "Acme"}')
    assert item_body(item) == {"title": "Acme drill", "description": "Cordless. Brand Acme", "category": "Tools"}
    assert "category" not in item_body(item.model_copy(update={"category": None}))
