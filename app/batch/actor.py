"""The pricing actor: Ray Data's stateful class in `map_batches`. Each worker loads the serving
stack once (app.pricing.local.LocalStack: the engine with vLLM's own multiprocessing executor, the
adapter manager's choice, the ensemble bundle, the index) and then prices whole parts: it reads the
part's rows from the staged input, validates each with the API's own item fields (the same
reasons as a 422, app.pricing.fields), prices them with the service's PricingCore, and writes the part's prices,
errors and summary (app.batch.job's layout). A row that fails never takes its batch down: the
batch is retried item by item and only the failing item goes to the errors file.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from app.batch import job
from app.batch.output import write_rows

log = logging.getLogger(__name__)


def _node() -> str | None:
    """The Ray node this worker runs on (None outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        return None


class PricingActor:
    def __init__(self, settings: dict, out: str, fmt: str, comparables: int, id_type: str, batch_size: int,
                 expect: dict):
        from app.config import Settings
        from app.pricing.local import LocalStack
        from app.runtime.reaper import start_reaper

        # vLLM's engine core is this process's child: it must not outlive a SIGKILL'd actor or a lost node
        self.reaper = start_reaper()
        self.out, self.fmt, self.k, self.id_type, self.batch_size = Path(out), fmt, comparables, id_type, batch_size
        config = Settings(**settings)
        self.inflight = config.batch_inflight
        self.stack = LocalStack(config).__enter__()
        self.core = self.stack.core
        self.versions = {"model": self.core.model, "adapter": self.stack.adapter,
                         "ensemble": self.core.ensemble.label if self.core.ensemble is not None else None}
        for key in ("ensemble", "adapter"):
            if key in expect and expect[key] != self.versions[key]:
                why = f" ({self.stack.ensemble_reason})" if key == "ensemble" and self.stack.ensemble_reason else ""
                raise job.JobMismatch(f"{self.out}: the job prices with {key} {expect[key]!r}, this worker serves "
                                      f"{self.versions[key]!r}{why}")
        if comparables and self.core.comparables is None:
            raise RuntimeError("--comparables asked, but this worker has no index of priced items (`pricer index build`)")

    def __call__(self, batch: dict) -> dict:
        summaries = [self.price_part(int(part)) for part in batch["part"]]
        return {"part": [s["part"] for s in summaries], "summary": [json.dumps(s) for s in summaries]}

    def price_part(self, index: int) -> dict:
        marker = job.summary_path(self.out, index)
        if marker.is_file():  # a retried task whose part is already written
            return json.loads(marker.read_text())
        import pyarrow.parquet as pq

        started = time.perf_counter()
        before = dict(self.core.member_seconds)
        rows = pq.ParquetFile(self.out / job.STAGED).read_row_group(index).to_pylist()
        errors, bodies, texts, ids = [], [], [], []
        for row in rows:
            body, text_or_reason = self.body(row)
            if body is None:
                errors.append({"id": row["id"], "reason": text_or_reason})
            else:
                bodies.append(body)
                texts.append(text_or_reason)
                ids.append(row["id"])
        priced = []
        starts = range(0, len(bodies), self.batch_size)
        chunks = [(bodies[start:start + self.batch_size], texts[start:start + self.batch_size]) for start in starts]
        for start, results in zip(starts, self.price_chunks(chunks), strict=True):
            for item_id, result in zip(ids[start:start + self.batch_size], results, strict=True):
                if isinstance(result, str):
                    errors.append({"id": item_id, "reason": result})
                else:
                    priced.append({"id": item_id, **result.as_dict()})
        seconds = time.perf_counter() - started
        members = {m: s - before.get(m, 0.0) for m, s in self.core.member_seconds.items() if s - before.get(m, 0.0) > 0}
        if self.core.ensemble is None:
            members = {"llm": seconds}
        write_rows(job.data_path(self.out, "errors", index, self.fmt), errors, "errors", self.fmt, self.id_type)
        write_rows(job.data_path(self.out, "prices", index, self.fmt), priced, "prices", self.fmt, self.id_type)
        summary = {"part": index, "rows": len(rows), "priced": len(priced), "errors": len(errors),
                   "seconds": seconds, "member_seconds": members, "versions": self.versions, "node": _node()}
        job.write_json(marker, summary)  # last: the part is done
        return summary

    def body(self, row: dict):
        """(item fields, its text) or (None, why): the API's own schema and reasons; the text is
        built once, here, and priced as it is."""
        from pydantic import ValidationError

        from app.pricing.fields import ItemFields, describe_validation
        from app.pricing.text import NOTHING_TO_PRICE, has_words

        if row.get("bad"):
            return None, row["bad"]
        try:
            fields = json.loads(row["item"])
            body = ItemFields.model_validate({**fields, "comparables": self.k})
        except ValidationError as e:
            return None, describe_validation(e.errors())[0]
        [text] = self.core.texts_now([body])
        if not has_words(text):
            return None, NOTHING_TO_PRICE
        return body, text

    def price_chunks(self, chunks: list[tuple[list, list]]) -> list[list]:
        """Each chunk's answers, `inflight` chunks in the engine at once (one core call each, as one
        POST /v1/estimate/batch). A chunk that fails goes through `price_chunk`, item by item."""
        import asyncio

        from app.engine.base import EngineDeadError

        async def all_chunks():
            slots = asyncio.Semaphore(self.inflight)

            async def one(chunk):
                async with slots:
                    return await self.core.price_many(*chunk)
            return await asyncio.gather(*(one(c) for c in chunks), return_exceptions=True)

        outcomes = self.stack.run(all_chunks) if chunks else []
        for outcome in outcomes:
            if isinstance(outcome, EngineDeadError):
                raise outcome
        return [self.price_chunk(*chunk) if isinstance(outcome, BaseException) else outcome
                for chunk, outcome in zip(chunks, outcomes, strict=True)]

    def price_chunk(self, bodies: list, texts: list) -> list:
        """Priced answers, or per item the reason it has none. A dead engine is raised (Ray restarts
        the worker and retries the part); any other failure of the chunk is retried item by item."""
        from app.engine.base import EngineDeadError

        if not bodies:
            return []
        try:
            return self.stack.run(self.core.price_many, bodies, texts)
        except EngineDeadError:
            raise
        except Exception as e:
            if len(bodies) == 1:
                return [f"{type(e).__name__}: {e}"]
            log.warning("a batch of %d failed (%s); pricing its items one by one", len(bodies), e)
            return [result for body, text in zip(bodies, texts, strict=True) for result in self.price_chunk([body], [text])]

    def __del__(self):
        stack = getattr(self, "stack", None)
        if stack is not None:
            stack.close()
