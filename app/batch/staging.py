"""The staged input: the catalog as one Parquet file in the output folder (`.input.parquet`), one row
group per part, so that a rerun continues over the same fixed parts. It is written while the input
is read (app.batch.inputs.chunks), so the driver holds one chunk at a time, never the whole file
(the whole file in Python objects took about 10.6 KB a row: 10 GB for 1M rows). It goes to a hidden
temp name and is renamed (after fsync) only once the whole input has passed its checks: a refused
input leaves nothing behind.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from app.batch import inputs, job
from app.runtime.atomic import replacing


@dataclass
class Staged:
    rows: int
    parts: int
    id_type: str  # "int" or "str"


def _schema(id_type: str):
    import pyarrow as pa

    return pa.schema([("id", pa.int64() if id_type == "int" else pa.string()), ("item", pa.string()), ("bad", pa.string())])


class PartWriter:
    """Rows in, row groups of exactly `part_rows` out (the last one may be shorter)."""

    def __init__(self, path: Path, part_rows: int):
        self.path, self.part_rows = path, part_rows
        self._writer = None
        self._pending: tuple[list, list, list] = ([], [], [])

    def add(self, ids: list, items: list, bad: list, id_type: str) -> None:
        if self._writer is None:
            import pyarrow.parquet as pq

            self._schema = _schema(id_type)
            self._writer = pq.ParquetWriter(self.path, self._schema)
        for pending, new in zip(self._pending, (ids, items, bad), strict=True):
            pending.extend(new)
        while len(self._pending[0]) >= self.part_rows:
            self._write(self.part_rows)

    def _write(self, count: int) -> None:
        import pyarrow as pa

        columns = [values[:count] for values in self._pending]
        self._pending = tuple(values[count:] for values in self._pending)
        self._writer.write_table(pa.table(dict(zip(("id", "item", "bad"), columns, strict=True)), schema=self._schema),
                                 row_group_size=count)

    def abort(self) -> None:
        if self._writer is not None:
            with suppress(Exception):
                self._writer.close()

    def close(self) -> None:
        if self._writer is None:
            return
        if self._pending[0]:
            self._write(len(self._pending[0]))
        self._writer.close()


def stage_file(path: Path, id_column: str, out: Path, part_rows: int, chunk_rows: int = inputs.CHUNK_ROWS) -> Staged:
    """Read, check and stage `path` into `out`; an InputError leaves no file behind."""
    return _stage(out, part_rows, lambda checker: inputs.chunks(path, id_column, chunk_rows, checker),
                  inputs.Checker(Path(path), id_column))


def stage_catalog(out: Path, catalog: inputs.Catalog, part_rows: int) -> Staged:
    """An already loaded catalog (small files, tests), staged the same way."""
    return _stage(out, part_rows, lambda checker: [(catalog.ids, catalog.items, catalog.bad)], None, catalog.id_type)


def _stage(out: Path, part_rows: int, source, checker, id_type: str | None = None) -> Staged:
    with replacing(out / job.STAGED) as temp:  # made durable there
        writer = PartWriter(temp, part_rows)
        try:
            for ids, items, bad in source(checker):
                writer.add(ids, items, bad, id_type or checker.id_type)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return read_staged(out)


def read_staged(out: Path) -> Staged | None:
    """What is staged in `out` (None: nothing yet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = out / job.STAGED
    if not path.is_file():
        return None
    file = pq.ParquetFile(path)
    id_type = "int" if pa.types.is_integer(file.schema_arrow.field("id").type) else "str"
    return Staged(file.metadata.num_rows, file.num_row_groups, id_type)


def staged_ids(out: Path, part: int) -> list:
    """The input ids of one part."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(out / job.STAGED).read_row_group(part, columns=["id"]).column("id").to_pylist()
