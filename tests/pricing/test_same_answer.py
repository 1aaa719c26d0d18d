"""The batch job's answer is the service's: the same items through POST /v1/estimate/batch and
through the batch job's pricing function (PricingActor.price_part, what each Ray worker runs, with
its Parquet round trip) give the same prices, intervals, components and versions, to the cent
(tolerance 0: both are rounded once, by app.pricing.core.Priced; float64 Parquet is exact)."""

from __future__ import annotations

import httpx
import pytest

from app.api.app import create_app
from app.batch import inputs, job
from app.batch.actor import PricingActor
from app.batch.output import read_rows
from app.batch.run import stage, worker_settings
from app.config import Settings
from app.engine.fake import FakeEngine
from tests.batch.fixtures import catalog_rows, make_store, settings_values, write_jsonl

FIELDS = ("price", "low", "high", "currency", "model", "adapter", "ensemble", "components")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
async def test_service_and_batch_job_give_the_same_answers(tmp_path, fmt):
    store = make_store(tmp_path / "store")
    settings = Settings(**settings_values(store))
    rows = catalog_rows(24, seed=5)
    bodies = [{k: v for k, v in row.items() if k != "id"} for row in rows]

    app = create_app(settings, FakeEngine(model_name="fake", model_dir=store / "base" / "fake"))
    async with app.router.lifespan_context(app):
        await app.state.lifecycle.wait_ready()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pricer.test") as client:
            response = await client.post("/v1/estimate/batch", json={"items": bodies})
    assert response.status_code == 200, response.text
    served = response.json()["estimates"]

    out = tmp_path / "out"
    catalog = inputs.load(write_jsonl(tmp_path / "in.jsonl", rows))
    assert stage(out, catalog, part_rows=len(rows)) == 1
    actor = PricingActor(worker_settings(settings), str(out), fmt, 0, catalog.id_type, batch_size=7, expect={})
    summary = actor.price_part(0)
    actor.stack.close()
    assert summary["priced"] == len(rows) and summary["errors"] == 0
    batch = {row["id"]: row for row in read_rows(job.data_path(out, "prices", 0, fmt), fmt)}

    assert served[0]["ensemble"] == "pricer-ensemble@20260101-000000" and set(served[0]["components"]) == {"bow-ridge", "constant", "llm"}
    assert len({s["price"] for s in served}) > 5  # the items get different prices: the comparison can fail
    for row, answer in zip(rows, served, strict=True):
        assert {k: batch[row["id"]][k] for k in FIELDS} == {k: answer[k] for k in FIELDS}, row["id"]
