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
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


CHUNK_ROWS = 8192  # rows read, checked and converted at a time: the driver never holds the whole file


def load(path: Path, id_column: str = "id") -> Catalog:
    """The whole catalog in memory (small files, tests); a job streams it: `chunks`."""
    catalog = Catalog([], [], [], "int")
    checker = Checker(Path(path), id_column)
    for ids, items, bad in chunks(path, id_column, checker=checker):
        catalog.ids, catalog.items, catalog.bad = catalog.ids + ids, catalog.items + items, catalog.bad + bad
    catalog.id_type = checker.id_type
    return catalog


def chunks(path: Path, id_column: str = "id", chunk_rows: int = CHUNK_ROWS, checker: Checker | None = None):
    """(ids, items, bad) of up to `chunk_rows` rows at a time, checked as they are read; an
    InputError for the whole file is raised as soon as it is known (the duplicate ids and a missing id
    column only once the last row is read: the caller writes nothing under a final name before)."""
    path = Path(path)
    kind = input_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    checker = checker or Checker(path, id_column)
    reader = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}[kind]
    try:
        for rows, columns in reader(path, chunk_rows):
            converted = checker.take(rows, columns)
            if converted[0]:
                yield converted
    except InputError:
        raise
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: cannot read it as {kind}: {e}") from None
    checker.finish()


class Checker:
    """The whole-file checks, one chunk after another: an id in every row, ids of one kind (int or
    str), no duplicates (counted in Arrow, not in Python objects: 10M ids are 80 MB)."""

    def __init__(self, path: Path, column: str):
        self.path, self.column = path, column
        self.rows, self.kind, self.columns = 0, None, set()
        self.idless: list[int] = []  # the first rows read before any id (the whole file: no id column)
        self._ids: list = []  # one Arrow array per chunk

    @property
    def id_type(self) -> str:
        return self.kind or "int"

    def take(self, rows: list[dict], columns: set[str]) -> tuple[list, list, list]:
        """The chunk's (ids, items as JSON texts, bad-row reasons); empty while no row has an id."""
        self.columns |= columns
        ids = [row.get(self.column) for row in rows]
        missing = [self.rows + i for i, v in enumerate(ids) if v is None or v == ""]
        if len(missing) == len(ids) and self.kind is None:
            self.idless += missing[:5 - len(self.idless)]
            self.rows += len(rows)
            return [], [], []
        if missing or self.idless:
            raise InputError(f"{self.path}: column {self.column!r} is empty in rows {(self.idless + missing)[:5]} "
                             "(every row needs an id)")
        kinds = {_kind(v) for v in ids} | ({self.kind} if self.kind else set())
        if kinds not in ({"int"}, {"str"}):
            raise InputError(f"{self.path}: column {self.column!r} has the wrong type ({', '.join(sorted(kinds))}); "
                             "ids are integers or strings, all of one kind")
        self.kind = kinds.pop()
        import pyarrow as pa

        self._ids.append(pa.array(ids, pa.int64() if self.kind == "int" else pa.string()))
        self.rows += len(rows)
        bad = [row.get("_bad") for row in rows]
        items = [None if reason else json.dumps({k: row[k] for k in FIELDS if k in row}, ensure_ascii=False)
                 for row, reason in zip(rows, bad, strict=True)]
        return ids, items, bad

    def finish(self) -> None:
        if not self.rows:
            raise InputError(f"{self.path}: no rows")
        if self.kind is None:
            raise InputError(f"{self.path}: no id column {self.column!r} (columns: {', '.join(sorted(self.columns)) or 'none'}); "
                             "name it with --id-column")
        import pyarrow as pa
        import pyarrow.compute as pc

        counts = pc.value_counts(pa.chunked_array(self._ids))
        repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        if len(repeated):
            shown = ", ".join(f"{v!r} ({n}x)" for v, n in zip(repeated.field("values")[:5].to_pylist(),
                                                           repeated.field("counts")[:5].to_pylist(), strict=True))
            raise InputError(f"{self.path}: {len(repeated)} duplicate ids in column {self.column!r}, e.g. {shown}; "
                             "every id must be unique")


def _kind(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "int"
    return "str" if isinstance(value, str) else type(value).__name__


def _jsonl(path: Path, chunk_rows: int):
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
            if len(rows) == chunk_rows:
                yield rows, columns
                rows, columns = [], set()
    if rows:
        yield rows, columns


def _csv(path: Path, chunk_rows: int):
    """Cells are text; features (a JSON list) and details (a JSON object) are JSON in their cells."""
    import pyarrow as pa
    from pyarrow import csv

    names = _header(path)
    types = {name: pa.string() for name in names if name in FIELDS}
    reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=1 << 22),
                          convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=True))
    for batch in reader:
        for start in range(0, batch.num_rows, chunk_rows):
            rows = batch.slice(start, chunk_rows).to_pylist()
            for row in rows:
                _csv_cells(row)
            yield rows, set(batch.schema.names)


def _csv_cells(row: dict) -> None:
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


def _header(path: Path) -> list[str]:
    import csv as stdcsv

    with path.open(encoding="utf-8", newline="") as f:
        return next(stdcsv.reader(f), [])


def _parquet(path: Path, chunk_rows: int):
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    _check_types(path, schema)
    for batch in file.iter_batches(batch_size=chunk_rows):
        rows = batch.to_pylist()
        for row in rows:
            _parquet_cells(row)
        yield rows, set(schema.names)


def _parquet_cells(row: dict) -> None:
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
