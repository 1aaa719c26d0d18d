"""One job's output folder: its identity (manifest), its parts and their completion.

Layout of `--out DIR`:

    job.json                 the identity (input hash, id column, options, versions) and, once
                             finished, the totals; written by temp-then-rename
    .input.parquet           the catalog as read (ids and item JSON), one row group per part: the
                             fixed partition a rerun continues from
    prices/part-00042.parquet   (or .jsonl) the priced rows of part 42
    errors/part-00042.parquet   (or .jsonl) id and reason of its rows that could not be priced
    parts/part-00042.json    the part's summary, written last: its presence marks the part done

Every file appears under its final name only when complete (write a hidden temp file, rename), so a
kill at any point leaves whole parts or none, and a rerun prices exactly the parts not yet done.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.runtime.atomic import atomic_write_bytes

MANIFEST = "job.json"
STAGED = ".input.parquet"
# Compared on a rerun: a folder whose job differs in any of them is refused, naming it.
IDENTITY = ("input_sha256", "id_column", "format", "comparables", "part_rows", "ensemble", "adapter", "index")


class JobMismatch(ValueError):
    """The output folder holds another job's results."""


def write_json(path: Path, value) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def differences(saved: dict, identity: dict) -> list[str]:
    """`key: saved -> new` for each identity field that differs (a key absent from `identity`,
    such as an adapter not known before the workers load, is not compared)."""
    out = []
    for key in IDENTITY:
        if key in identity and key in saved and saved[key] != identity[key]:
            out.append(f"{key}: {saved[key]!r} here, {identity[key]!r} now")
    return out


def check_folder(out: Path, identity: dict) -> dict | None:
    """The saved manifest when `out` holds this job (finished or not), None for an empty or new
    folder; JobMismatch naming the difference for another job's folder or a foreign one."""
    saved = read_manifest(out)
    if saved is None:
        stray = [p.name for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []
        if stray:
            raise JobMismatch(f"{out} is not empty and holds no {MANIFEST} ({', '.join(sorted(stray)[:5])}): "
                              "not a `pricer price` output folder; choose another --out")
        return None
    diff = differences(saved, identity)
    if diff:
        raise JobMismatch(f"{out} holds another job's results ({'; '.join(diff)}); choose another --out or remove it")
    return saved


def part_name(index: int) -> str:
    return f"part-{index:05d}"


def summary_path(out: Path, index: int) -> Path:
    return out / "parts" / f"{part_name(index)}.json"


def data_path(out: Path, kind: str, index: int, fmt: str) -> Path:
    """kind: "prices" or "errors"."""
    return out / kind / f"{part_name(index)}.{fmt}"


def done_parts(out: Path) -> dict[int, dict]:
    folder = out / "parts"
    done = {}
    if folder.is_dir():
        for path in folder.glob("part-*.json"):
            done[int(path.stem.split("-")[1])] = json.loads(path.read_text())
    return done
