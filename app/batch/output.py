"""The job's output files: priced rows and error rows, Parquet (explicit schemas, so that every
part reads as one dataset) or JSONL, each written by temp-then-rename (app.runtime.atomic)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from app.runtime.atomic import atomic_write_bytes


def _schemas(id_type: str):
    import pyarrow as pa

    id_field = pa.field("id", pa.int64() if id_type == "int" else pa.string())
    comparable = pa.struct([("title", pa.string()), ("price", pa.float64()), ("similarity", pa.float64())])
    prices = pa.schema([
        id_field, ("price", pa.float64()), ("low", pa.float64()), ("high", pa.float64()), ("currency", pa.string()),
        ("model", pa.string()), ("adapter", pa.string()), ("ensemble", pa.string()),
        ("components", pa.map_(pa.string(), pa.float64())), ("comparables", pa.list_(comparable)),
    ])
    errors = pa.schema([id_field, ("reason", pa.string())])
    return prices, errors


def write_rows(path: Path, rows: list[dict], kind: str, fmt: str, id_type: str) -> None:
    """kind: "prices" or "errors"; fmt: "parquet" or "jsonl"."""
    if fmt == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_bytes(path, text.encode())
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schemas(id_type)[0 if kind == "prices" else 1]
    cells = [dict(row, components=list(row["components"].items()) if row.get("components") else None)
             if kind == "prices" else row for row in rows]
    table = pa.Table.from_pylist(cells, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_rows(path: Path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    for row in rows:
        if isinstance(row.get("components"), list):
            row["components"] = dict(row["components"])
    return rows


def read_all(out: Path, kind: str, fmt: str) -> list[dict]:
    """Every part's rows of one kind, in part order."""
    folder = out / kind
    return [row for path in sorted(folder.glob(f"part-*.{fmt}")) for row in read_rows(path, fmt)] if folder.is_dir() else []


def read_ids(path: Path, fmt: str) -> list:
    """The id column of one part's file (only that column is read)."""
    if fmt == "jsonl":
        return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["id"]).column("id").to_pylist()
