"""Search: k limits, self-exclusion, and the ANN agreeing with exact search."""

from __future__ import annotations

import numpy as np
import pytest

from app.bench.ann import recall_at
from app.index import ann
from app.index.ann import AnnParams
from app.index.embedders import document
from app.index.index import MAX_K, Index
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder


@pytest.fixture(scope="module")
def items():
    return make_items(30, seed=6)


@pytest.fixture(scope="module")
def index(items):
    return Index.from_items(items, FakeEmbedder())


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 2.5, True])
def test_k_out_of_range_is_refused(index, k):
    with pytest.raises(ValueError, match="k must be an integer"):
        index.search(["a desk lamp"], k)


def test_k_is_capped_by_the_index_size(index):
    assert len(index.search(["a desk lamp"], 1)[0]) == 1
    assert len(index.search(["a desk lamp"], 7)[0]) == 7
    everything = index.search(["a desk lamp"], MAX_K)[0]
    assert len(everything) == 30 and len({c.title for c in everything}) == 30


def test_no_queries_no_answers(index):
    assert index.search([], 5) == []


def test_an_item_never_retrieves_itself_with_exclude(index, items):
    texts = [document(i) for i in items]
    plain = index.search(texts, 3)
    assert all(row[0].title == item.title and row[0].similarity == pytest.approx(1.0, abs=1e-4)
               for row, item in zip(plain, items, strict=True))
    excluded = index.search(texts, 3, exclude=True)
    assert all(len(row) == 3 and item.title not in {c.title for c in row} for row, item in zip(excluded, items, strict=True))
    # every other item is still reachable
    assert len(index.search(texts[:1], MAX_K, exclude=True)[0]) == 29


def test_exclusion_of_a_text_indexed_several_times():
    items = make_items(12, seed=7)
    dupes = items + [items[0].model_copy(update={"price": 1000.0 + n}) for n in range(6)]  # same text, 7 times
    index = Index.from_items(dupes, FakeEmbedder(), AnnParams(kind="flat"))
    assert index.search([document(items[0])], 1)[0][0].similarity == pytest.approx(1.0, abs=1e-4)
    row = index.search([document(items[0])], 4, exclude=True)[0]
    assert len(row) == 4 and not any(c.title == items[0].title for c in row)


def test_hnsw_agrees_with_exact_search_on_clustered_vectors():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 32)).astype(np.float32)
    points = centres[rng.integers(0, 20, 3000)] + 0.3 * rng.standard_normal((3000, 32)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    queries = points[:100] + 0.05 * rng.standard_normal((100, 32)).astype(np.float32)
    hnsw = ann.build(points, AnnParams(m=16, ef_construction=100, ef_search=64))
    _, found = ann.search(hnsw, queries, 5)
    _, exact = ann.exact_search(points, queries, 5)
    assert recall_at(found, exact) > 0.95
    assert recall_at(exact, exact) == 1.0 and recall_at(exact[:, ::-1] + 10_000, exact) == 0.0
    saved = ann.vectors_of(hnsw)
    assert np.array_equal(saved, points)
