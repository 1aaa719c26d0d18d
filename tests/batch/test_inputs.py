"""Bad input is refused before any work, with the reason; bad rows are kept for the errors file."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.batch.inputs import InputError, load
from tests.batch.fixtures import catalog_rows, write_jsonl


def test_jsonl_rows_keep_only_the_api_fields(tmp_path):
    rows = catalog_rows(5)
    rows[1]["price"] = 12.0  # a catalog column the API does not take is not sent to it
    catalog = load(write_jsonl(tmp_path / "in.jsonl", rows))
    assert catalog.ids == [1000, 1001, 1002, 1003, 1004] and catalog.id_type == "int"
    assert "price" not in json.loads(catalog.items[1]) and json.loads(catalog.items[0])["details"]["Brand"] == "Acme"


@pytest.mark.parametrize("name, content, message", [
    ("in.txt", "x", "unknown format '.txt'"),
    ("in.jsonl", '{"id": 1, "title": "a"}\n{"id": 2, "title": \n', "line 2 is not JSON"),
    ("in.jsonl", '[1, 2]\n', "line 1 is not a JSON object"),
    ("in.jsonl", '{"key": 1, "title": "a"}\n', "no id column 'id' (columns: key, title)"),
    ("in.jsonl", '{"id": 1, "title": "a"}\n{"id": "2", "title": "b"}\n', "column 'id' has the wrong type (int, str)"),
    ("in.jsonl", '{"id": 1.5, "title": "a"}\n', "column 'id' has the wrong type (float)"),
    ("in.jsonl", '{"id": 1, "title": "a"}\n{"title": "b"}\n', "column 'id' is empty in rows [1]"),
    ("in.jsonl", "\n", "no rows"),
    ("in.parquet", "not parquet at all", "cannot read it as parquet"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "absent.jsonl")


def test_duplicate_ids_are_refused_naming_a_few(tmp_path):
    rows = catalog_rows(10)
    for i in (3, 4, 5):
        rows[i]["id"] = 1000 + i - 3
    with pytest.raises(InputError, match=r"3 duplicate ids in column 'id', e.g. 1000 \(2x\), 1001 \(2x\), 1002 \(2x\)"):
        load(write_jsonl(tmp_path / "in.jsonl", rows))


def test_parquet_columns_of_the_wrong_type_are_refused(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 2], "title": [3, 4], "features": [[1], [2]]}), path)
    with pytest.raises(InputError, match="column of the wrong type: title is int64, not text; features is list<element: int64>, not a list of text"):
        load(path)


def test_parquet_structs_and_maps_become_details(tmp_path):
    path = tmp_path / "in.parquet"
    details = pa.array([{"Brand": "Acme", "Size": None}, {"Brand": None, "Size": "XL"}])
    pq.write_table(pa.table({"sku": ["a", "b"], "title": ["drill", "saw"], "details": details,
                             "features": [["x"], None]}), path)
    catalog = load(path, id_column="sku")
    assert catalog.id_type == "str"
    assert [json.loads(i)["details"] for i in catalog.items] == [{"Brand": "Acme"}, {"Size": "XL"}]


def test_csv_cells_with_bad_json_make_a_bad_row_not_a_bad_file(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,title,features,details\n1,123,"[""a""]","{""Brand"": ""Acme""}"\n2,saw,not json,\n')
    catalog = load(path)
    assert json.loads(catalog.items[0]) == {"title": "123", "features": ["a"], "details": {"Brand": "Acme"}, }
    assert catalog.items[1] is None and "features: the cell is not JSON" in catalog.bad[1]
