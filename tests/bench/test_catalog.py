"""`pricer bench catalog`'s pieces without a model: the catalog it builds, the REST leg against a live
fake-engine service, and the ratios it reports (the legs on the real model are run by hand:
docs/batch.md)."""

from __future__ import annotations

import json

from app.api.app import create_app
from app.bench.catalog import catalog_file, compare, rest_leg
from app.config import Settings
from app.engine.fake import FakeEngine
from app.model.item_files import write_items
from tests.api.live_server import live_server
from tests.batch.fixtures import make_store, settings_values
from tests.factories import make_items


def test_the_catalog_repeats_the_data_to_the_asked_size_with_unique_ids(tmp_path):
    data = tmp_path / "val.jsonl"
    write_items(data, make_items(7))
    path, bodies = catalog_file(data, 20, tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len(bodies) == 20 and [r["id"] for r in rows] == list(range(20))
    assert rows[7]["title"] == rows[0]["title"] and "id" not in bodies[0]


def test_a_larger_data_file_gives_its_first_rows_only(tmp_path):
    data = tmp_path / "mix.jsonl"
    write_items(data, make_items(12))
    _, bodies = catalog_file(data, 5, tmp_path)
    assert [b["title"] for b in bodies] == [json.loads(line)["title"] for line in data.read_text().splitlines()[:5]]


def test_the_rest_leg_prices_every_item_through_the_batch_route(tmp_path):
    store = make_store(tmp_path / "store")
    settings = Settings(**settings_values(store))
    data = tmp_path / "val.jsonl"
    write_items(data, make_items(10))
    _, bodies = catalog_file(data, 30, tmp_path)
    with live_server(create_app(settings, FakeEngine(model_name="fake", model_dir=store / "base" / "fake"))) as url:
        result = rest_leg(url, bodies, batch=8, concurrency=2, api_key=None)
    assert result["items"] == 30 and result["failed_requests"] == 0 and result["items_per_s"] > 0


def test_the_ratios_are_the_issues_goals():
    result = compare({"batch": {"rows": 100, "items_per_s": 30.0, "worker_items_per_s": 40.0},
                      "batch_llm": {"rows": 100, "items_per_s": 40.0, "worker_items_per_s": 45.0},
                      "rest": {"items_per_s": 20.0}, "raw_vllm": {"requests_per_s": 50.0}})
    assert result["batch_vs_rest"] == 1.5 and result["batch_worker_vs_rest"] == 2.0
    assert result["llm_stage_vs_raw"] == 0.9


def test_without_a_raw_leg_there_is_no_stage_ratio():
    assert "llm_stage_vs_raw" not in compare({"batch": {"items_per_s": 3.0}, "rest": {"items_per_s": 2.0}})
