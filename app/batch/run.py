"""The driver of `pricer price`: check everything that can be checked before any work, stage the
input as fixed parts, run Ray Data (the parts -> map_batches(PricingActor) -> their files), then
prove the output: every input id exactly once in prices or errors, rows out + errors = rows in.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from app.batch import inputs, job, staging
from app.batch.output import read_ids
from app.cli_options import cli
from app.config import Settings

log = logging.getLogger(__name__)


class PriceOptions(BaseModel):
    """What `pricer price` is asked, each option declared once (its command line: app.cli_options)."""

    input: Path = Field(description="Catalog file: .jsonl, .csv or .parquet rows with title, description, features, details, category and an id.",
                        json_schema_extra=cli(argument=True))
    out: Path = Field(description="Output folder (prices/, errors/, parts/, job.json); a rerun continues it.")
    id_column: str = Field("id", description="The column holding each row's unique id.")
    format: str = Field("parquet", description="Output format: parquet or jsonl.")
    comparables: int = Field(0, ge=0, le=20, description="Similar priced items (0-20) per row, as the API's `comparables`.")
    ray_address: str | None = Field(None, description="Join this Ray cluster (e.g. auto, or HOST:6379); unset: a local Ray started in-process.")
    workers: int | None = Field(None, ge=1, description="Pricing actors; default: one per GPU, else one per node.")
    batch_size: int | None = Field(None, ge=1, description="Items per engine call; default PRICER_BATCH_SIZE.")
    part_rows: int | None = Field(None, ge=1, description="Rows per part (the resume unit); default PRICER_BATCH_PART_ROWS.")
    cpus_per_worker: float | None = Field(None, ge=0.1, description="CPUs each actor reserves; default: the node's CPUs (1 with a GPU).")
    gpus_per_worker: float | None = Field(None, ge=0, description="GPUs each actor reserves; default: 1 on a GPU cluster, else 0.")
    as_json: bool = Field(False, description="Print one JSON object last: rows, priced, errors, seconds, items_per_s, member_seconds, versions.",
                          json_schema_extra=cli(name="--json"))  # how the summary is printed; the job ignores it


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
    """A loaded catalog staged as a job stages its input (tests, small files); the part count."""
    return staging.stage_catalog(out, catalog, part_rows).parts


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


def stage_input(options: PriceOptions, out: Path, part_rows: int) -> staging.Staged:
    """Stream the input into its fixed parts; a refused input leaves no folder it created behind."""
    created = not out.exists()
    try:
        return staging.stage_file(options.input, options.id_column, out, part_rows)
    except inputs.InputError:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def refuse_another_adapter(out: Path, saved: dict, settings: Settings) -> None:
    """A finished folder whose adapter is not the one the store's desired state now names is
    another job's (a job's adapter is otherwise known only once a worker has loaded)."""
    from app.pricing.local import NOT_CHOSEN, desired_adapter_label

    now = desired_adapter_label(settings)
    if now is not NOT_CHOSEN and "adapter" in saved and saved["adapter"] != now:
        raise job.JobMismatch(f"{out} holds another job's results (adapter: {saved['adapter']!r} here, {now!r} now, "
                              "the desired state's); choose another --out or remove it")


def run(options: PriceOptions, settings: Settings, say=print) -> dict:
    started = time.perf_counter()
    part_rows = options.part_rows or settings.batch_part_rows
    if options.format not in ("parquet", "jsonl"):
        raise inputs.InputError(f"--format {options.format!r}: use parquet or jsonl")
    inputs.input_format(options.input)  # an unknown format is named before a missing file
    if not options.input.is_file():
        raise inputs.InputError(f"{options.input}: no such file")
    sha = inputs.file_hash(options.input)
    out = options.out
    wanted = identity(options, settings, sha, part_rows)
    saved = job.check_folder(out, wanted)
    if saved is not None and saved.get("status") == "done":
        refuse_another_adapter(out, saved, settings)
        say(f"nothing to do: {out} already holds this job's results ({saved['rows']} rows: "
            f"{saved['priced']} priced, {saved['errors']} errors)")
        return {**saved["summary"], "already_done": True}
    if saved is not None and "adapter" in saved:
        wanted["adapter"] = saved["adapter"]
    staged = staging.read_staged(out) if saved is not None else None
    if staged is None:
        staged = stage_input(options, out, part_rows)
    job.write_json(out / job.MANIFEST, {**wanted, "status": "running", "rows": staged.rows, "parts": staged.parts,
                                        "input": str(options.input)})
    done = job.done_parts(out)
    pending = [i for i in range(staged.parts) if i not in done]
    if done:
        # the rest is priced by the version that priced the first parts, or refused by the workers
        wanted["adapter"] = next(iter(done.values()))["versions"]["adapter"]
        say(f"resuming: {len(done)} of {staged.parts} parts already done, {len(pending)} to price")
    if pending:
        from app.batch.engine import run_parts

        run_parts(options, settings, pending, staged.id_type, {k: wanted[k] for k in ("ensemble", "adapter") if k in wanted},
                  worker_settings(settings))
    return finish(out, options, staged, wanted, time.perf_counter() - started, say, priced_now=pending)


def finish(out: Path, options: PriceOptions, staged: staging.Staged, wanted: dict, seconds: float, say,
           priced_now: list[int] | None = None) -> dict:
    """Check the output against the input, part by part (never the whole output in memory), record
    the totals, print the summary line. `priced_now`: the parts this run priced (None: all), whose
    rows this run's items/s counts (a resumed run did not price the parts already done)."""
    summaries = job.done_parts(out)
    missing_parts = [i for i in range(staged.parts) if i not in summaries]
    if missing_parts:
        raise OutputMismatch(f"parts {missing_parts[:5]} were not written; run the same command again to continue")
    priced = errors = duplicates = missing = stray = 0
    for part in range(staged.parts):
        expected = set(staging.staged_ids(out, part))
        prices = read_ids(job.data_path(out, "prices", part, options.format), options.format)
        failed = read_ids(job.data_path(out, "errors", part, options.format), options.format)
        seen = prices + failed
        priced, errors = priced + len(prices), errors + len(failed)
        duplicates += len(seen) - len(set(seen))
        missing += len(expected - set(seen))
        stray += len(set(seen) - expected)
    if duplicates or missing or stray or priced + errors != staged.rows:
        raise OutputMismatch(f"{out}: {priced + errors} rows out for {staged.rows} in ({duplicates} duplicates, "
                             f"{missing} missing, {stray} not of their part)")
    versions = sorted({json.dumps(s["versions"], sort_keys=True) for s in summaries.values()})
    if len(versions) > 1:
        raise OutputMismatch(f"{out}: parts were priced by different versions: {versions}")
    used = json.loads(versions[0])
    members: Counter = Counter()
    for s in summaries.values():
        members.update(s["member_seconds"])  # update, not +: a member's 0.0 s stays
    # pricing seconds: the parts' own time in their workers, without Ray's and the models' start
    pricing_s = sum(s["seconds"] for s in summaries.values())
    rows = staged.rows
    now = rows if priced_now is None else sum(summaries[i]["rows"] for i in priced_now)
    summary = {"rows": rows, "priced": priced, "errors": errors, "duplicates": duplicates,
               "missing": missing, "rows_this_run": now, "seconds": round(seconds, 3),
               "items_per_s": round(now / seconds, 3) if seconds else None,
               "worker_items_per_s": round(rows / pricing_s, 3) if pricing_s else None,
               "member_seconds": {m: round(v, 3) for m, v in sorted(members.items())}, "versions": used,
               "parts": staged.parts, "out": str(out)}
    manifest = job.read_manifest(out) or {}
    job.write_json(out / job.MANIFEST, {**manifest, **wanted, "adapter": used["adapter"], "status": "done",
                                        "rows": rows, "priced": priced, "errors": errors, "summary": summary})
    say(f"priced {priced} + errors {errors} = {priced + errors} rows out of {rows} in "
        f"({duplicates} duplicates, {missing} missing) in {seconds:.1f} s "
        f"({'' if now == rows else f'{now} of them priced by this run, '}{summary['items_per_s']} items/s); "
        f"{out}/prices, {out}/errors")
    return summary
