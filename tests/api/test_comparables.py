"""Comparables in the API: k obeyed (0 = none, at most 20, over it 422), sorted by similarity, batch
items each with their own k; a service without an index answers a 409 problem, never a 5xx."""

from __future__ import annotations

import pytest

from app.index.index import Index
from app.index.service import ComparablesService
from app.index.store import build_index
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder

ITEM = {"title": "Acme premium heavy duty drill model 3", "description": "Cordless drill. Brand Acme."}


@pytest.fixture
async def indexed(make_service, tmp_path):
    folder = build_index(make_items(40), tmp_path / "idx", FakeEmbedder())
    async with make_service() as (client, app):
        app.state.lifecycle.extras.comparables = ComparablesService(Index.load(folder, embedder=FakeEmbedder()))
        yield client


async def test_k_comparables_most_similar_first(indexed):
    r = await indexed.post("/v1/estimate", json={**ITEM, "comparables": 3})
    assert r.status_code == 200, r.text
    found = r.json()["comparables"]
    assert len(found) == 3 and all(set(c) == {"title", "price", "similarity"} for c in found)
    sims = [c["similarity"] for c in found]
    assert sims == sorted(sims, reverse=True) and all(c["price"] > 0 for c in found)
    assert len((await indexed.post("/v1/estimate", json={**ITEM, "comparables": 20})).json()["comparables"]) == 20


async def test_no_comparables_unless_asked(indexed):
    assert "comparables" not in (await indexed.post("/v1/estimate", json=ITEM)).json()
    assert "comparables" not in (await indexed.post("/v1/estimate", json={**ITEM, "comparables": 0})).json()


@pytest.mark.parametrize("k", [21, -1, "many"])
async def test_k_out_of_limits_is_a_422_problem(indexed, k):
    r = await indexed.post("/v1/estimate", json={**ITEM, "comparables": k})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "comparables" in r.text


async def test_batch_items_each_get_their_own_k(indexed):
    items = [{**ITEM, "comparables": 2}, {"title": "Acme basic kettle"}, {"title": "Acme basic kettle", "comparables": 5}]
    r = await indexed.post("/v1/estimate/batch", json={"items": items})
    assert r.status_code == 200, r.text
    estimates = r.json()["estimates"]
    assert len(estimates[0]["comparables"]) == 2 and "comparables" not in estimates[1]
    assert len(estimates[2]["comparables"]) == 5
    over = await indexed.post("/v1/estimate/batch", json={"items": [{**ITEM, "comparables": 21}]})
    assert over.status_code == 422


async def test_no_index_is_a_clear_409_problem(client):
    for path, body in (("/v1/estimate", {**ITEM, "comparables": 3}),
                       ("/v1/estimate/batch", {"items": [ITEM, {**ITEM, "comparables": 1}]})):
        r = await client.post(path, json=body)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["type"].endswith("comparables-unavailable") and "pricer index build" in problem["detail"]
    assert (await client.post("/v1/estimate", json=ITEM)).status_code == 200


async def test_comparables_below_the_similarity_floor_are_held_back_and_the_answer_says_so(make_service, tmp_path):
    folder = build_index(make_items(40), tmp_path / "idx", FakeEmbedder())
    index = ComparablesService(Index.load(folder, embedder=FakeEmbedder()))
    body = {"title": ITEM["title"], "comparables": 10}
    async with make_service() as (client, app):  # no floor: all 10
        app.state.lifecycle.extras.comparables = index
        sims = sorted(c["similarity"] for c in (await client.post("/v1/estimate", json=body)).json()["comparables"])
    cut = next(i for i in range(1, len(sims)) if sims[i] > sims[i - 1])  # the first step up (ties stay together)
    floor = (sims[cut - 1] + sims[cut]) / 2  # the `cut` least similar of the 10 fall below it
    async with make_service(comparables_min_similarity=floor) as (client, app):
        app.state.lifecycle.extras.comparables = index
        answer = (await client.post("/v1/estimate", json=body)).json()
        shown = answer["comparables"]
        assert len(shown) == 10 - cut and all(c["similarity"] >= floor for c in shown)
        assert answer["comparables_note"].startswith(f"{cut} of the 10 most similar indexed items are below the similarity floor")
        close = (await client.post("/v1/estimate", json={**body, "comparables": 10 - cut})).json()
        assert len(close["comparables"]) == 10 - cut and "comparables_note" not in close  # every one above the floor
