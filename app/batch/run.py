"""The driver of `pricer price`: check everything that can be checked before any work, stage the
input as fixed parts, run Ray Data (the parts -> map_batches(PricingActor) -> their files), then
prove the output: every input id exactly once in prices or errors, rows out + errors = rows in.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from app.batch import inputs, job
from app.batch.output import read_all
from app.config import Settings

log = logging.getLogger(__name__)


@dataclass
class PriceOptions:
    input: Path
    out: Path
    id_column: str = "id"
    format: str = "parquet"
    comparables: int = 0
    ray_address: str | None = None
    workers: int | None = None  # None: from the cluster (one per GPU, else one per node)
    batch_size: int | None = None  # items per engine call; None: PRICER_BATCH_SIZE
    part_rows: int | None = None  # None: PRICER_BATCH_PART_ROWS
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None


class OutputMismatch(RuntimeError):
    """The written output does not hold every input id exactly once (never expected: a bug)."""


def identity(options: PriceOptions, settings: Settings, sha: str, part_rows: int) -> dict:
    from app.pricing.local import ensemble_label

    wanted = {"input_sha256": sha, "id_column": options.id_column, "format": options.format,
              "comparables": options.comparables, "part_rows": part_rows, "ensemble": ensemble_label(settings)}
    if options.comparables:
        wanted["index"] = index_version(settings, options.comparables)
    return wanted


def index_version(settings: Settings, k: int) -> str:
    """The index version the comparables come from; asked without one: refused before any work."""
    from app.index.manifest import IndexFolderError, resolve
    from app.index.service import index_root

    try:
        return resolve(index_root(settings)).name
    except IndexFolderError as e:
        raise inputs.InputError(f"--comparables {k}: {e}") from None


def stage(out: Path, catalog: inputs.Catalog, part_rows: int) -> int:
    """The catalog as a Parquet file with one row group per part (temp, then rename); the part count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array(catalog.ids, pa.int64() if catalog.id_type == "int" else pa.string()),
                      "item": pa.array(catalog.items, pa.string()), "bad": pa.array(catalog.bad, pa.string())})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=part_rows)
    job.write_atomic(out / job.STAGED, buffer.getvalue())
    return pq.ParquetFile(out / job.STAGED).num_row_groups


def worker_settings(settings: Settings) -> dict:
    """The settings a worker rebuilds (secrets left to its own environment; paths absolute)."""
    values = settings.model_dump(mode="json", exclude={"api_key", "admin_key", "frontier_api_key"})
    values["member_timeout_s"] = settings.batch_member_timeout_s  # a job's deadline, not the interactive one
    for key in ("models_dir", "index_dir", "ensemble_dir", "curate_tokenizer"):
        if values.get(key):
            values[key] = str(Path(values[key]).resolve())
    if Path(settings.base_model).exists():
        values["base_model"] = str(Path(settings.base_model).resolve())
    return values


def run(options: PriceOptions, settings: Settings, say=print) -> dict:
    started = time.perf_counter()
    part_rows = options.part_rows or settings.batch_part_rows
    if options.format not in ("parquet", "jsonl"):
        raise inputs.InputError(f"--format {options.format!r}: use parquet or jsonl")
    catalog = inputs.load(options.input, options.id_column)
    sha = inputs.file_hash(options.input)
    out = options.out
    wanted = identity(options, settings, sha, part_rows)
    saved = job.check_folder(out, wanted)
    if saved is not None and saved.get("status") == "done":
        say(f"nothing to do: {out} already holds this job's results ({saved['rows']} rows: "
            f"{saved['priced']} priced, {saved['errors']} errors)")
        return {**saved["summary"], "already_done": True}
    if saved is not None and "adapter" in saved:
        wanted["adapter"] = saved["adapter"]
    out.mkdir(parents=True, exist_ok=True)
    parts = stage(out, catalog, part_rows)
    job.write_json(out / job.MANIFEST, {**wanted, "status": "running", "rows": len(catalog), "parts": parts,
                                        "input": str(options.input)})
    done = job.done_parts(out)
    pending = [i for i in range(parts) if i not in done]
    if done:
        # the rest is priced by the version that priced the first parts, or refused by the workers
        wanted["adapter"] = next(iter(done.values()))["versions"]["adapter"]
        say(f"resuming: {len(done)} of {parts} parts already done, {len(pending)} to price")
    if pending:
        from app.batch.engine import run_parts

        run_parts(options, settings, pending, catalog.id_type, {k: wanted[k] for k in ("ensemble", "adapter") if k in wanted},
                  worker_settings(settings))
    return finish(out, options, catalog, wanted, parts, time.perf_counter() - started, say)


def finish(out: Path, options: PriceOptions, catalog: inputs.Catalog, wanted: dict, parts: int, seconds: float, say) -> dict:
    """Check the output against the input, record the totals, print the summary line."""
    summaries = job.done_parts(out)
    missing_parts = [i for i in range(parts) if i not in summaries]
    if missing_parts:
        raise OutputMismatch(f"parts {missing_parts[:5]} were not written; run the same command again to continue")
    priced = [r["id"] for r in read_all(out, "prices", options.format)]
    errors = [r["id"] for r in read_all(out, "errors", options.format)]
    seen = priced + errors
    duplicates = len(seen) - len(set(seen))
    missing = len(set(catalog.ids) - set(seen))
    if duplicates or missing or len(seen) != len(catalog):
        raise OutputMismatch(f"{out}: {len(seen)} rows out for {len(catalog)} in ({duplicates} duplicates, {missing} missing)")
    versions = sorted({json.dumps(s["versions"], sort_keys=True) for s in summaries.values()})
    if len(versions) > 1:
        raise OutputMismatch(f"{out}: parts were priced by different versions: {versions}")
    used = json.loads(versions[0])
    members: dict[str, float] = {}
    for s in summaries.values():
        for m, v in s["member_seconds"].items():
            members[m] = members.get(m, 0.0) + v
    # pricing seconds: the parts' own time in their workers, without Ray's and the models' start
    pricing_s = sum(s["seconds"] for s in summaries.values())
    summary = {"rows": len(catalog), "priced": len(priced), "errors": len(errors), "duplicates": duplicates,
               "missing": missing, "seconds": round(seconds, 3), "items_per_s": round(len(catalog) / seconds, 3) if seconds else None,
               "worker_items_per_s": round(len(catalog) / pricing_s, 3) if pricing_s else None,
               "member_seconds": {m: round(v, 3) for m, v in sorted(members.items())}, "versions": used,
               "parts": parts, "out": str(out)}
    manifest = job.read_manifest(out) or {}
    job.write_json(out / job.MANIFEST, {**manifest, **wanted, "adapter": used["adapter"], "status": "done",
                                        "rows": len(catalog), "priced": len(priced), "errors": len(errors), "summary": summary})
    say(f"priced {len(priced)} + errors {len(errors)} = {len(seen)} rows out of {len(catalog)} in "
        f"({duplicates} duplicates, {missing} missing) in {seconds:.1f} s ({summary['items_per_s']} items/s); "
        f"{out}/prices, {out}/errors")
    return summary
