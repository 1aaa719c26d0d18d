"""The ensemble as the service's answer, on the fake engine (the `llm` member) and a small real
bundle (skops members fitted on make_items): components, a member failing or timing out is left
out of a 200 answer, GET /v1/ensemble, the member metrics, PRICER_ESTIMATOR=llm, no bundle."""

from __future__ import annotations

import shutil
import time

import pytest

from app.engine.base import EngineError
from app.engine.fake import FakeEngine
from tests.api.ensemble_fixtures import MEMBERS, write_test_bundle

ITEM = {"title": "Acme premium heavy duty drill model 7", "description": "Cordless, two batteries. Brand Acme."}


@pytest.fixture
def bundle(store):
    return write_test_bundle(store)


def _runner(app, name):
    return app.state.lifecycle.extras.ensemble.runners[name]


async def test_the_ensemble_answers_with_every_members_price(make_service, bundle):
    async with make_service() as (client, app):
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ensemble"] == "pricer-ensemble@20260101-000000"
        assert set(body["components"]) == set(MEMBERS) and all(p > 0 for p in body["components"].values())
        assert body["low"] <= body["price"] <= body["high"]
        # the stack's answer is none of the members' own
        assert body["price"] not in body["components"].values()
        assert "comparables" not in body
        listing = (await client.get("/v1/ensemble")).json()
        assert listing["ensemble"] == body["ensemble"] and listing["loaded"] == list(MEMBERS) and listing["missing"] == {}
        assert listing["promotion"] is None  # fitted by hand: no promotion record


async def test_a_member_failing_mid_request_leaves_a_200_from_the_rest(make_service, bundle):
    async with make_service() as (client, app):
        full = (await client.post("/v1/estimate", json=ITEM)).json()

        def boom(items):
            raise RuntimeError("member crashed")

        _runner(app, "bow-ridge").estimator.predict = boom
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["components"]["bow-ridge"] is None
        assert body["components"]["constant"] == full["components"]["constant"] and body["components"]["llm"] > 0
        assert body["price"] != full["price"]  # the stack fitted without bow-ridge answered
        batch = await client.post("/v1/estimate/batch", json={"items": [ITEM, {"title": "Acme basic kettle"}]})
        assert batch.status_code == 200 and all(e["components"]["bow-ridge"] is None for e in batch.json()["estimates"])
        metrics = (await client.get("/metrics")).text
        assert 'pricer_member_left_out_total{member="bow-ridge",reason="error"}' in metrics


async def test_the_llm_member_failing_is_left_out_and_no_adapter_is_named(make_service, store, bundle):
    engine = FakeEngine(model_dir=store / "base" / "fake")
    async with make_service(engine=engine) as (client, app):
        engine.fail_with = EngineError("engine hiccup")
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 200, r.text
        assert r.json()["components"]["llm"] is None and r.json()["adapter"] is None


async def test_a_timed_out_member_is_left_out(make_service, store, bundle):
    engine = FakeEngine(model_dir=store / "base" / "fake")
    async with make_service(engine=engine, member_timeout_s=0.3) as (client, app):
        _runner(app, "constant").estimator.predict = lambda items: time.sleep(1.0) or [5.0] * len(items)
        engine.latency_s = 1.0  # the llm member too
        started = time.perf_counter()
        r = await client.post("/v1/estimate", json=ITEM)
        took = time.perf_counter() - started
        assert r.status_code == 200, r.text
        components = r.json()["components"]
        assert components["constant"] is None and components["llm"] is None and components["bow-ridge"] > 0
        assert took < 0.9, f"the answer waited for the slow members ({took:.2f} s)"
        metrics = (await client.get("/metrics")).text
        assert 'pricer_member_left_out_total{member="constant",reason="timeout"}' in metrics
        assert 'pricer_member_left_out_total{member="llm",reason="timeout"}' in metrics


async def test_every_member_failing_is_a_503_problem_not_a_500(make_service, store, bundle):
    engine = FakeEngine(model_dir=store / "base" / "fake")
    async with make_service(engine=engine) as (client, app):
        engine.fail_with = EngineError("down")
        for name in ("bow-ridge", "constant"):
            _runner(app, name).estimator.predict = lambda items: 1 / 0
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 503 and r.json()["type"].endswith("no-estimate")


async def test_metrics_have_each_members_latency(make_service, bundle):
    async with make_service() as (client, app):
        assert (await client.post("/v1/estimate", json=ITEM)).status_code == 200
        metrics = (await client.get("/metrics")).text
        for name in MEMBERS:
            assert f'pricer_member_duration_seconds_count{{member="{name}"}}' in metrics


async def test_a_missing_member_is_listed_with_its_reason_and_the_rest_serve(make_service, bundle):
    shutil.rmtree(bundle / "members" / "bow-ridge")
    async with make_service() as (client, app):
        listing = (await client.get("/v1/ensemble")).json()
        assert listing["loaded"] == ["constant", "llm"]
        assert "bow-ridge" in listing["missing"] and "missing" in listing["missing"]["bow-ridge"]
        row = next(m for m in listing["members"] if m["name"] == "bow-ridge")
        assert row["status"] == "missing"
        body = (await client.post("/v1/estimate", json=ITEM)).json()
        assert body["components"]["bow-ridge"] is None and body["components"]["constant"] > 0


async def test_the_listing_shows_the_promotion_record_of_the_bundle(make_service, bundle):
    """`pricer build` records its measurement in the manifest (app.build.promote.record): the bundle
    still loads and GET /v1/ensemble says why it answers."""
    from app.build.promote import Comparison, Decision, record

    comparison = Comparison(n=60, new_mean_error=40.0, active_mean_error=45.0, difference=-5.0, difference_ci=(-8.0, -2.0),
                            new_coverage=0.8, active_coverage=0.78, new_hit_rate=0.6, active_hit_rate=0.55, level=0.8)
    written = record(bundle, comparison, Decision(True, "new $40.00 vs active $45.00: better"), "if-better",
                     "pricer-ensemble@20251231-000000")
    async with make_service() as (client, app):
        listing = (await client.get("/v1/ensemble")).json()
        assert listing["loaded"] == list(MEMBERS) and listing["missing"] == {}
        assert listing["promotion"] == written and listing["promotion"]["comparison"]["difference_ci"] == [-8.0, -2.0]
        assert listing["promotion"]["against"] == "pricer-ensemble@20251231-000000"


async def test_estimator_llm_serves_the_llm_alone(make_service, bundle):
    async with make_service(estimator="llm") as (client, app):
        body = (await client.post("/v1/estimate", json=ITEM)).json()
        assert "components" not in body and "ensemble" not in body
        assert body["price"] == FakeEngine.price_for(body_text(app))
        listing = (await client.get("/v1/ensemble")).json()
        assert listing["estimator"] == "llm" and "PRICER_ESTIMATOR=llm" in listing["reason"] and listing["promotion"] is None


async def test_no_bundle_serves_the_llm_alone_and_says_so(make_service):
    async with make_service() as (client, app):
        body = (await client.post("/v1/estimate", json=ITEM)).json()
        assert "components" not in body and body["price"] > 0
        listing = (await client.get("/v1/ensemble")).json()
        assert listing["ensemble"] is None and "no ensemble bundle" in listing["reason"]


def body_text(app):
    [(texts, _)] = app.state.lifecycle.engine.calls[-1:]
    return texts[0]


async def test_another_adapter_than_the_fitted_one_is_left_out_of_the_stack(store, bundle):
    """The stack weighs the answers of the adapter version it was fitted on; another version (a
    service without an index serves the one trained without comparables) is left out, counted."""
    from app.ensemble.bundle import Bundle
    from app.ensemble.service import EnsembleService, OtherAdapter, fitted_adapter_label
    from app.model.prices import PriceEstimate
    from tests.factories import make_items

    assert fitted_adapter_label({"ref": "adapters/pricer-smollm2/20261128-205318-s000512"}) == "pricer-smollm2@20261128-205318-s000512"
    assert fitted_adapter_label({"ref": "refs/llm"}) is None
    service = EnsembleService(Bundle.load(bundle), {}, "llm", llm_label="pa@v1")
    items = make_items(2)

    def answered_by(label):
        async def call(only=None):  # as EstimateService.price: another leased version than `only` raises
            if only is not None and label != only:
                raise OtherAdapter(label)
            return [PriceEstimate(price=50.0, low=40.0, high=60.0, text="50")] * 2, label
        return call

    fitted = await service.answer(items, answered_by("pa@v1"))
    assert [a.components["llm"] for a in fitted] == [50.0, 50.0] and fitted[0].adapter == "pa@v1"
    from app.ensemble.service import NoMembersAnswered

    with pytest.raises(NoMembersAnswered):  # the only member here, left out: nobody answered
        await service.answer(items, answered_by("pa@v2"))


async def test_another_adapter_serving_is_never_run_for_the_ensemble(make_service, store, bundle):
    """A service whose active adapter is not the one the stack was fitted on (no index: the older
    adapter serves) answers from the other members without running the LLM at all."""
    engine = FakeEngine(model_dir=store / "base" / "fake")
    async with make_service(engine=engine) as (client, app):
        ensemble = app.state.lifecycle.extras.ensemble
        assert (await client.post("/v1/estimate", json=ITEM)).json()["components"]["llm"] > 0
        runs, before = len(engine.calls), await other_adapter_count(client)
        ensemble.llm_label = "pricer-smollm2@20990101-000000-s000001"  # fitted on a version not serving
        r = await client.post("/v1/estimate", json=ITEM)
        assert r.status_code == 200, r.text
        assert r.json()["components"]["llm"] is None and r.json()["adapter"] is None
        assert r.json()["components"]["bow-ridge"] > 0
        assert len(engine.calls) == runs, "the engine ran for an answer the stack leaves out"
        assert await other_adapter_count(client) == before + 1


async def other_adapter_count(client) -> float:
    """pricer_member_left_out_total for the llm's other-adapter reason (counters are process-wide)."""
    key = 'pricer_member_left_out_total{member="llm",reason="other-adapter"} '
    found = [line for line in (await client.get("/metrics")).text.splitlines() if line.startswith(key)]
    return float(found[0][len(key):]) if found else 0.0


async def test_a_batch_request_gives_members_time_in_proportion_to_its_items(make_service, store, bundle):
    """The member time-out covers 16 items: a member that needs 0.45 s is left out of a single
    request at a 0.3 s time-out, but answers within a batch of 32 items (0.6 s)."""
    engine = FakeEngine(model_dir=store / "base" / "fake")
    async with make_service(engine=engine, member_timeout_s=0.3) as (client, app):
        _runner(app, "constant").estimator.predict = lambda items: time.sleep(0.45) or [5.0] * len(items)
        single = await client.post("/v1/estimate", json=ITEM)
        assert single.status_code == 200 and single.json()["components"]["constant"] is None
        batch = await client.post("/v1/estimate/batch", json={"items": [ITEM] * 32})
        assert batch.status_code == 200, batch.text
        assert all(e["components"]["constant"] == 5.0 for e in batch.json()["estimates"])
