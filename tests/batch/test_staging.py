"""The input is staged while it is read (chunk by chunk, never whole in memory) into fixed parts,
and a refused input leaves nothing behind; the final check reads the output part by part."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from app.batch import inputs, job, staging
from app.batch.output import write_rows
from app.batch.run import OutputMismatch, PriceOptions, finish, stage_input
from tests.batch.fixtures import catalog_rows, write_jsonl


def staged_rows(out):
    return pq.read_table(out / job.STAGED).to_pylist()


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_chunks_become_fixed_parts_with_what_loading_the_whole_file_gives(tmp_path, suffix):
    rows = catalog_rows(23)
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    if suffix == "csv":
        path = tmp_path / "in.csv"
        table = pa.table({"id": [r["id"] for r in rows], "title": [r["title"] for r in rows],
                          "features": [json.dumps(r["features"]) if "features" in r else None for r in rows]})
        pacsv.write_csv(table, path)
    elif suffix == "parquet":
        path = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "details"} for r in rows]), path, row_group_size=4)
    staged = staging.stage_file(path, "id", tmp_path / "out", part_rows=5, chunk_rows=7)  # chunks straddle parts
    assert (staged.rows, staged.parts, staged.id_type) == (23, 5, "int")
    file = pq.ParquetFile(tmp_path / "out" / job.STAGED)
    assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == [5, 5, 5, 5, 3]
    whole = inputs.load(path)
    assert staged_rows(tmp_path / "out") == [{"id": i, "item": item, "bad": bad}
                                             for i, item, bad in zip(whole.ids, whole.items, whole.bad, strict=True)]
    assert staging.staged_ids(tmp_path / "out", 4) == whole.ids[20:]


def test_a_duplicate_in_the_last_chunk_leaves_nothing_behind(tmp_path):
    rows = catalog_rows(30)
    rows[-1]["id"] = rows[0]["id"]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    with pytest.raises(inputs.InputError, match=r"1 duplicate ids in column 'id', e.g. 1000 \(2x\)"):
        stage_input(PriceOptions(input=path, out=out), out, part_rows=4)
    assert not out.exists()  # the folder it created is gone, with the temp file in it


def test_rows_without_ids_before_the_first_id_are_named(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"title": "a"}, {"title": "b"}, {"id": 3, "title": "c"}])
    with pytest.raises(inputs.InputError, match=r"column 'id' is empty in rows \[0, 1\]"):
        staging.stage_file(path, "id", tmp_path / "out", part_rows=4, chunk_rows=1)
    assert not any((tmp_path / "out").iterdir())


def test_ids_of_another_kind_in_a_later_chunk_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "title": "a"}, {"id": "x", "title": "b"}])
    with pytest.raises(inputs.InputError, match=r"has the wrong type \(int, str\)"):
        staging.stage_file(path, "id", tmp_path / "out", part_rows=4, chunk_rows=1)


def write_part(out, part: int, priced: list, errors: list) -> None:
    write_rows(job.data_path(out, "prices", part, "parquet"),
               [{"id": i, "price": 1.0, "low": 1.0, "high": 1.0, "currency": "USD", "model": "m", "adapter": None,
                 "ensemble": None, "components": None, "comparables": None} for i in priced], "prices", "parquet", "int")
    write_rows(job.data_path(out, "errors", part, "parquet"), [{"id": i, "reason": "x"} for i in errors], "errors", "parquet", "int")
    job.write_json(job.summary_path(out, part), {"part": part, "rows": len(priced) + len(errors), "seconds": 1.0,
                                                 "member_seconds": {}, "versions": {"adapter": None}})


@pytest.mark.parametrize("second_part, problem", [
    (([1003, 1004], [1005]), None),
    (([1003, 1004], []), "(0 duplicates, 1 missing, 0 not of their part)"),
    (([1003, 1004, 1004], [1005]), "(1 duplicates, 0 missing, 0 not of their part)"),
    (([1003, 1004, 1000], [1005]), "7 rows out for 6 in (0 duplicates, 0 missing, 1 not of their part)"),
])
def test_the_final_check_reads_part_by_part(tmp_path, second_part, problem):
    out = tmp_path / "out"
    staged = staging.stage_file(write_jsonl(tmp_path / "in.jsonl", catalog_rows(6)), "id", out, part_rows=3)
    write_part(out, 0, [1000, 1001], [1002])
    write_part(out, 1, *second_part)
    options = PriceOptions(input=tmp_path / "in.jsonl", out=out)
    if problem is None:
        summary = finish(out, options, staged, {}, 2.0, say=lambda line: None)
        assert (summary["rows"], summary["priced"], summary["errors"], summary["missing"]) == (6, 4, 2, 0)
        assert summary["items_per_s"] == 3.0  # 6 rows in 2 s
        resumed = finish(out, options, staged, {}, 2.0, say=lambda line: None, priced_now=[1])
        assert (resumed["rows_this_run"], resumed["items_per_s"]) == (3, 1.5)  # part 0 was done before
    else:
        with pytest.raises(OutputMismatch, match=problem.replace("(", r"\(").replace(")", r"\)")):
            finish(out, options, staged, {}, 2.0, say=lambda line: None)
