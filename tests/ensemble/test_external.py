"""A knn member found by content: the index built with its embedder from the same data files serves
it on any machine; another index, or none, leaves it out with a reason that says how to build one."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.ensemble.bundle import BundleError
from app.ensemble.external import find_index, is_content_member, load_content_member
from app.index.manifest import DataFile, IndexManifest
from app.index.store import build_index
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder


@pytest.fixture
def index_root(tmp_path):
    root = tmp_path / "index"
    build_index(make_items(30), root, FakeEmbedder(), data=[DataFile(path="train.jsonl", sha256="a" * 64, items=30)])
    return root


def _row(folder_or_root, **params):
    from app.index.manifest import versions

    root = folder_or_root
    folder = versions(root)[-1] if not (root / "manifest.json").is_file() else root
    manifest = IndexManifest.read(folder)
    return {"name": "knn", "kind": "external", "estimator": "knn", "params": params,
            "index": {"embedder": manifest.embedder, "data_sha256": [d.sha256 for d in manifest.data]}}


def test_finds_the_index_built_from_the_same_data(index_root):
    row = _row(index_root, k=5)
    assert is_content_member(row)
    assert row["index"]["data_sha256"] == ["a" * 64]
    folder = find_index(index_root, row["index"])
    assert (folder / "manifest.json").is_file()
    knn = load_content_member(row, Settings(index_dir=index_root), embedder=FakeEmbedder())
    prices = knn.predict(make_items(3, seed=4))
    assert knn.k == 5 and len(prices) == 3 and all(p > 0 for p in prices)


def test_other_data_or_no_index_is_a_reason_not_a_crash(index_root, tmp_path):
    row = _row(index_root)
    other = {**row["index"], "data_sha256": ["0" * 64]}
    with pytest.raises(BundleError, match="make index"):
        find_index(index_root, other)
    with pytest.raises(BundleError, match="no index there"):
        find_index(tmp_path / "nowhere", row["index"])
    with pytest.raises(BundleError, match="embedder"):
        find_index(index_root, {**row["index"], "embedder": "minilm"})


def test_a_saved_knn_becomes_a_content_row_that_finds_an_index_of_the_same_file(tmp_path):
    from app.estimators.knn import KnnEstimator
    from app.ensemble.external import content_row
    from app.index.manifest import sha256_file
    from app.model.item_files import write_items

    train = tmp_path / "train.jsonl"
    write_items(train, make_items(30))
    KnnEstimator(k=4, embedder=FakeEmbedder()).fit(make_items(30)).save(tmp_path / "knn")
    row, saved = content_row({"name": "knn"}, tmp_path / "knn", [train])
    assert saved is None and is_content_member(row)  # nothing of the index is copied into the bundle
    assert row["params"]["k"] == 4 and row["index"] == {"embedder": "fake-words", "data_sha256": [sha256_file(train)]}
    root = tmp_path / "index"
    build_index(make_items(30), root, FakeEmbedder(), data=[DataFile(path=str(train), sha256=sha256_file(train), items=30)])
    assert find_index(root, row["index"]).parent == root
    with pytest.raises(BundleError, match="needs --train"):
        content_row({"name": "knn"}, tmp_path / "knn", [])
    assert content_row({"name": "x"}, None, [train]) == ({"name": "x"}, None)
