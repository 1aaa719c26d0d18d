"""`pricer index build` and `pricer bench index` end to end, with the real packaged MiniLM."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import cli
from app.index.index import Index
from app.index.manifest import IndexManifest, sha256_file
from app.model.item_files import write_items
from tests.factories import make_items


def test_build_then_search_then_bench(tmp_path):
    items = make_items(40, seed=12)
    data = tmp_path / "items.jsonl"
    write_items(data, items)
    runner = CliRunner()
    result = runner.invoke(cli, ["index", "build", "--data", str(data), "--out", str(tmp_path / "index")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "index" / json.loads(result.stdout.strip().splitlines()[-1])["index"].split("/")[-1]
    manifest = IndexManifest.read(folder)
    assert (manifest.embedder, manifest.dim, manifest.count) == ("minilm", 384, 40)
    assert manifest.data[0].sha256 == sha256_file(data) and manifest.data[0].items == 40

    # the real embedder puts a reworded copy of an item next to it
    index = Index.load(tmp_path / "index")
    query = items[21].text.replace("is built for everyday use", "is made for daily use")
    assert index.search([query], 1)[0][0].title == items[21].title

    bench = runner.invoke(cli, ["bench", "index", "--index", str(tmp_path / "index"), "--queries", str(data),
                                "--n-queries", "20", "--synthetic", "3000", "--ef", "32", "--max-build-s", "30"])
    assert bench.exit_code == 0, bench.output
    out = json.loads(bench.stdout.strip().splitlines()[-1])
    assert out["built"]["items"] == 40 and out["built"]["by_ef_search"][0]["recall_at_5"] >= 0.9
    assert out["built"]["index_bytes"] > 40 * 384 * 4 and out["built"]["lookup_with_embedding"]["p50_ms"] > 0
    synthetic = out["synthetic"]
    assert synthetic["built"] == 3000 and 0 <= synthetic["fresh_queries"][0]["recall_at_5"] <= 1
    assert synthetic["near_duplicate_queries"][0]["planted_found_first"] > 0.9


def test_build_refuses_a_missing_file(tmp_path):
    result = CliRunner().invoke(cli, ["index", "build", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nope.jsonl" in result.output


def test_skip_existing_builds_only_what_is_not_there(tmp_path):
    """`--skip-existing` (what `make index` runs): the same files again build nothing; another set of
    files, or the same files in another order, is matched by content, not by name or order."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_items(first, make_items(12, seed=3))
    write_items(second, make_items(9, seed=4))
    runner, out = CliRunner(), tmp_path / "index"

    def build(*files):
        args = ["index", "build", *[a for f in files for a in ("--data", str(f))], "--out", str(out), "--skip-existing"]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])

    only_first = build(first)
    assert not only_first.get("skipped") and only_first["items"] == 12
    again = build(first)
    assert again["skipped"] and again["index"] == only_first["index"]
    both = build(first, second)
    assert not both.get("skipped") and both["items"] == 21
    assert build(second, first) == {**both, "skipped": True}
    assert len([p for p in out.iterdir() if (p / "manifest.json").is_file()]) == 2
    # a changed file is other data: built again
    write_items(first, make_items(13, seed=3))
    assert not build(first).get("skipped")
    missing = runner.invoke(cli, ["index", "build", "--data", str(tmp_path / "nope.jsonl"), "--out", str(out), "--skip-existing"])
    assert missing.exit_code == 2 and "nope.jsonl" in missing.output
