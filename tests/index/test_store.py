"""Building, writing and loading index versions: round trip, planted near-duplicate, versions."""

from __future__ import annotations

import json

import pytest

from app.index.ann import AnnParams
from app.index.index import Index
from app.index.manifest import MANIFEST, IndexManifest, resolve, versions
from app.index.store import build_index
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder

QUERIES = ["premium heavy duty espresso machine", "basic compact USB cable", "office chair for everyday use"]


@pytest.fixture
def built(tmp_path):
    items = make_items(60, seed=3)
    folder = build_index(items, tmp_path / "index", FakeEmbedder(), AnnParams(m=8, ef_construction=40, ef_search=64))
    return items, folder


def test_version_folder_is_whole_and_pickle_free(built, tmp_path):
    items, folder = built
    assert folder.parent == tmp_path / "index" and not folder.name.startswith(".")
    assert sorted(p.name for p in folder.iterdir()) == ["ann.faiss", "items.jsonl", MANIFEST]
    assert not [p for p in (tmp_path / "index").iterdir() if p.name.startswith(".")]  # no temp folder left
    manifest = IndexManifest.read(folder)
    assert (manifest.embedder, manifest.dim, manifest.count, manifest.ann.kind) == ("fake-words", 64, 60, "hnsw")
    assert manifest.library.startswith("faiss-cpu") and set(manifest.files) == {"ann.faiss", "items.jsonl"}
    rows = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    assert [r["title"] for r in rows] == [i.title for i in items] and rows[0]["price"] == items[0].price


def test_round_trip_gives_the_same_answers(built):
    items, folder = built
    embedder = FakeEmbedder()
    in_memory = Index.from_items(items, embedder, AnnParams(m=8, ef_construction=40, ef_search=64))
    loaded = Index.load(folder, embedder=embedder)
    assert loaded.version == folder.name and len(loaded) == 60
    assert loaded.search(QUERIES, 5) == in_memory.search(QUERIES, 5)
    again = Index.load(folder.parent, embedder=embedder)  # the root resolves to its newest version
    assert again.search(QUERIES, 5) == loaded.search(QUERIES, 5)


def test_finds_a_planted_near_duplicate(tmp_path):
    items = make_items(50, seed=4)
    planted = items[17]
    index = Index.load(build_index(items, tmp_path, FakeEmbedder()), embedder=FakeEmbedder())
    query = planted.text.replace("everyday use", "daily use")  # a near copy, not the same text
    best = index.search([query], 3)[0]
    assert best[0].title == planted.title and best[0].price == planted.price
    assert best[0].similarity > 0.9
    assert [c.similarity for c in best] == sorted((c.similarity for c in best), reverse=True)


def test_newest_version_wins_and_same_second_builds_do_not_collide(tmp_path):
    first = build_index(make_items(10, seed=1), tmp_path, FakeEmbedder())
    second = build_index(make_items(10, seed=2), tmp_path, FakeEmbedder())
    assert first != second and versions(tmp_path) == sorted([first, second])
    assert resolve(tmp_path) == second


def test_no_items_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        build_index([], tmp_path, FakeEmbedder())
    assert versions(tmp_path) == []
