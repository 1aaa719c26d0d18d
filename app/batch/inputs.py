"""Reading a catalog file for `pricer price`: JSONL, CSV or Parquet rows with the API's item fields
and an id column. Everything that makes the whole file unusable (unreadable, unknown format, no id
column, a column of the wrong type, duplicate or missing ids) is an InputError raised here, before
any work. A row whose own values are wrong is kept: the pricing actor validates it with the API's
request schema and writes the reason to the errors file.

The result is a `Catalog`: the ids and, per row, the item's fields as one JSON object text (what the
API would receive), or the reason the row could not be read (a CSV cell that is not JSON).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("title", "description", "features", "details", "category")
TEXT_FIELDS = ("title", "description", "category")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class InputError(ValueError):
    """The input cannot be priced at all; the message says why (nothing was started or written)."""


@dataclass
class Catalog:
    ids: list  # all int or all str
    items: list[str | None]  # the API fields of each row as a JSON object text
    bad: list[str | None]  # per row: why its fields could not be read, else None
    id_type: str  # "int" or "str"

    def __len__(self) -> int:
        return len(self.ids)


def input_format(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown format {path.suffix or '(no suffix)'!r}; use one of {', '.join(sorted(FORMATS))}")
    return kind


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: Path, id_column: str = "id") -> Catalog:
    path = Path(path)
    kind = input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        rows, columns = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}[kind](path)
    except InputError:
        raise
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: cannot read it as {kind}: {e}") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    if id_column not in columns:
        raise InputError(f"{path}: no id column {id_column!r} (columns: {', '.join(sorted(columns)) or 'none'}); name it with --id-column")
    ids = [row.get(id_column) for row in rows]
    id_type = _id_type(path, id_column, ids)
    _no_duplicates(path, id_column, ids)
    items, bad = [], []
    for row in rows:
        fields = {k: row[k] for k in FIELDS if k in row}
        reason = row.get("_bad")
        items.append(None if reason else json.dumps(fields, ensure_ascii=False))
        bad.append(reason)
    return Catalog(ids, items, bad, id_type)


def _id_type(path: Path, column: str, ids: list) -> str:
    missing = [i for i, v in enumerate(ids) if v is None or v == ""]
    if missing:
        raise InputError(f"{path}: column {column!r} is empty in rows {missing[:5]} (every row needs an id)")
    kinds = {("int" if isinstance(v, int) and not isinstance(v, bool) else "str" if isinstance(v, str) else type(v).__name__) for v in ids}
    if kinds == {"int"} or kinds == {"str"}:
        return kinds.pop()
    raise InputError(f"{path}: column {column!r} has the wrong type ({', '.join(sorted(kinds))}); ids are integers or strings, all of one kind")


def _no_duplicates(path: Path, column: str, ids: list) -> None:
    counts = Counter(ids)
    repeated = [(v, n) for v, n in counts.items() if n > 1]
    if repeated:
        shown = ", ".join(f"{v!r} ({n}x)" for v, n in repeated[:5])
        raise InputError(f"{path}: {len(repeated)} duplicate ids in column {column!r}, e.g. {shown}; every id must be unique")


def _jsonl(path: Path) -> tuple[list[dict], set[str]]:
    rows, columns = [], set()
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {number} is not JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}: line {number} is not a JSON object")
            rows.append(row)
            columns.update(row)
    return rows, columns


def _csv(path: Path) -> tuple[list[dict], set[str]]:
    """Cells are text; features (a JSON list) and details (a JSON object) are JSON in their cells."""
    import pyarrow as pa
    from pyarrow import csv

    names = _header(path)
    types = {name: pa.string() for name in names if name in FIELDS}
    table = csv.read_csv(path, convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=True))
    rows = table.to_pylist()
    for row in rows:
        reasons = []
        for name in ("features", "details"):
            cell = row.get(name)
            if cell is None:
                continue
            try:
                row[name] = json.loads(cell)
            except json.JSONDecodeError:
                reasons.append(f"{name}: the cell is not JSON ({'a list of strings' if name == 'features' else 'an object'})")
        if reasons:
            row["_bad"] = "; ".join(reasons)
    return rows, set(table.column_names)


def _header(path: Path) -> list[str]:
    import csv as stdcsv

    with path.open(encoding="utf-8", newline="") as f:
        return next(stdcsv.reader(f), [])


def _parquet(path: Path) -> tuple[list[dict], set[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    _check_types(path, table.schema)
    rows = table.to_pylist()
    for row in rows:
        if isinstance(row.get("features"), str):
            try:
                row["features"] = json.loads(row["features"])
            except json.JSONDecodeError:
                row["_bad"] = "features: not a JSON list"
        details = row.get("details")
        if isinstance(details, list):  # a map column: [(key, value), ...]
            row["details"] = dict(details)
        elif isinstance(details, dict):  # a struct column: keys absent in this row are None
            row["details"] = {k: v for k, v in details.items() if v is not None}
        elif isinstance(details, str):
            try:
                row["details"] = json.loads(details)
            except json.JSONDecodeError:
                row["_bad"] = "details: not a JSON object"
        row.pop("__index_level_0__", None)
    return rows, set(table.column_names)


def _check_types(path: Path, schema) -> None:
    import pyarrow as pa

    def text(t) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)

    wrong = []
    for field in schema:
        t = field.type
        if field.name in TEXT_FIELDS and not text(t):
            wrong.append(f"{field.name} is {t}, not text")
        elif field.name == "features" and not (text(t) or (pa.types.is_list(t) or pa.types.is_large_list(t)) and text(t.value_type)):
            wrong.append(f"features is {t}, not a list of text")
        elif field.name == "details" and not (text(t) or pa.types.is_struct(t) or pa.types.is_map(t)):
            wrong.append(f"details is {t}, not a struct, map or JSON text")
    if wrong:
        raise InputError(f"{path}: column of the wrong type: {'; '.join(wrong)}")
