"""`pricer curate` and `pricer data chart` end to end on raw rows the test writes."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.model.item_files import load_items
from tests.data.raw_rows import raw_row, write_raw


@pytest.fixture
def raw_file(tmp_path):
    good = [raw_row(i, price=round(5 + i * 7.3, 2)) for i in range(30)]
    bad = [
        raw_row(100, price="None"),
        raw_row(101, price=None),
        raw_row(102, price="$12"),
        raw_row(103, price=0.1),
        raw_row(104, price=1500.0),
        raw_row(105, description=["short"], features=[], details=None),
        raw_row(106, title=""),
    ]
    return write_raw(tmp_path / "meta_Appliances.jsonl", good + bad, ["{not json", "42"])


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_curate_writes_splits_and_an_honest_summary(raw_file, tmp_path, tokenizer_dir):
    out = tmp_path / "curated"
    result = run("curate", raw_file, "--out", out, "--tokenizer", tokenizer_dir, "--val", 4, "--test", 0.1, "--seed", 5)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["read"] == 39 and summary["kept"] == 30
    assert summary["dropped"] == {
        "no price": 2, "malformed row": 2, "price not a number": 1, "price out of range": 2,
        "contents too short": 1, "no title": 1,
    }
    assert summary["first_dropped_at"]["malformed row"] == f"{raw_file}:38"
    assert summary["splits"] == {"test": 3, "val": 4, "train": 23}
    items = {name: load_items(out / f"{name}.jsonl") for name in ("train", "val", "test")}
    every = [i for part in items.values() for i in part]
    assert len({i.title for i in every}) == 30
    assert all(i.category == "Appliances" and i.text.startswith(i.title.split(" XJ")[0]) for i in every)
    assert sorted(os.listdir(out)) == ["summary.json", "test.jsonl", "train.jsonl", "val.jsonl"]


def test_curate_refuses_missing_input_before_writing_anything(tmp_path, tokenizer_dir):
    out = tmp_path / "curated"
    result = run("curate", tmp_path / "absent.jsonl", "--out", out, "--tokenizer", tokenizer_dir)
    assert result.exit_code == 2 and "absent.jsonl" in result.output
    assert not out.exists()
    result = run("curate", "--out", out)
    assert result.exit_code == 2 and "--hub-category" in result.output


def test_hub_refuses_clearly_when_offline(tmp_path, tokenizer_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run("curate", "--hub-category", "Appliances", "--out", tmp_path / "o", "--tokenizer", tokenizer_dir)
    assert result.exit_code == 2 and "HF_HUB_OFFLINE" in result.output


def test_data_chart(raw_file, tmp_path, tokenizer_dir):
    out = tmp_path / "curated"
    assert run("curate", raw_file, "--out", out, "--tokenizer", tokenizer_dir, "--val", 0, "--test", 0).exit_code == 0
    png = tmp_path / "chart.png"
    result = run("data", "chart", "--data", out / "train.jsonl", "--out", png, "--tokenizer", tokenizer_dir)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
