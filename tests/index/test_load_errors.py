"""A missing or mismatched index is refused with a message that says what is wrong."""

from __future__ import annotations

import json

import pytest

from app.index.index import Index
from app.index.manifest import MANIFEST, IndexFolderError
from app.index.store import build_index
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder


@pytest.fixture
def folder(tmp_path):
    return build_index(make_items(20, seed=5), tmp_path / "index", FakeEmbedder())


def test_no_index_at_all(tmp_path):
    with pytest.raises(IndexFolderError, match="no index at .*pricer index build"):
        Index.load(tmp_path / "nothing-here")


def test_folder_without_manifest_is_not_a_version(folder):
    (folder / MANIFEST).unlink()
    with pytest.raises(IndexFolderError, match="no index at"):
        Index.load(folder.parent, embedder=FakeEmbedder())


@pytest.mark.parametrize("name", ["ann.faiss", "items.jsonl"])
def test_missing_file(folder, name):
    (folder / name).unlink()
    with pytest.raises(IndexFolderError, match=f"missing {name}"):
        Index.load(folder, embedder=FakeEmbedder())


def test_changed_file(folder):
    with open(folder / "items.jsonl", "a") as f:
        f.write(json.dumps({"title": "extra", "price": 1.0, "key": "x"}) + "\n")
    with pytest.raises(IndexFolderError, match="items.jsonl does not match its manifest"):
        Index.load(folder, embedder=FakeEmbedder())


def test_manifest_count_mismatch(folder):
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["count"] = 21
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexFolderError, match="manifest says 21 items"):
        Index.load(folder, embedder=FakeEmbedder())


def test_invalid_manifest(folder):
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(IndexFolderError, match="not a valid index manifest"):
        Index.load(folder, embedder=FakeEmbedder())


def test_other_embedder_is_refused(folder):
    with pytest.raises(IndexFolderError, match="built with embedder 'fake-words', not 'other'"):
        Index.load(folder, embedder=FakeEmbedder(name="other"))
    with pytest.raises(IndexFolderError, match="64-d vectors"):
        Index.load(folder, embedder=FakeEmbedder(dim=32))


def test_unknown_embedder_name_in_manifest(folder):
    from app.index.embedders import UnknownEmbedderError

    with pytest.raises(UnknownEmbedderError, match="fake-words"):
        Index.load(folder)  # no embedder given: the manifest's name must be a known one
