"""What the service layer calls: index_from_settings and ComparablesService.lookup."""

from __future__ import annotations

import logging

import pytest

from app.config import Settings
from app.index.index import Index
from app.index.service import API_MAX_K, ComparablesService, index_from_settings, index_root
from app.index.store import build_index
from tests.factories import make_items
from tests.index.fake_embedder import FakeEmbedder


def test_no_index_means_no_service_and_a_logged_reason(tmp_path, caplog):
    settings = Settings(models_dir=tmp_path)
    assert index_root(settings) == tmp_path / "index"
    with caplog.at_level(logging.WARNING, logger="pricer.index"):
        assert index_from_settings(settings) is None
    assert "comparables disabled" in caplog.text and "pricer index build" in caplog.text


def test_a_broken_index_is_not_fatal(tmp_path, caplog):
    folder = build_index(make_items(10), tmp_path / "idx", FakeEmbedder())
    (folder / "ann.faiss").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="pricer.index"):
        assert index_from_settings(Settings(index_dir=tmp_path / "idx")) is None
    assert "ann.faiss does not match" in caplog.text


@pytest.fixture
def service(tmp_path):
    folder = build_index(make_items(40), tmp_path, FakeEmbedder())
    return ComparablesService(Index.load(folder, embedder=FakeEmbedder()))


def test_lookup_obeys_k(service):
    assert len(service.lookup("premium espresso machine", 1)) == 1
    found = service.lookup("premium espresso machine", API_MAX_K)
    assert len(found) == 20 and all(c.price > 0 and -1 <= c.similarity <= 1 for c in found)
    for bad in (0, API_MAX_K + 1, -3):
        with pytest.raises(ValueError, match="comparables must be from 1 to 20"):
            service.lookup("espresso", bad)
    assert set(found[0].model_dump()) == {"title", "price", "similarity"}
    assert service.describe()["items"] == 40


async def test_async_lookup_and_batches(service):
    one = await service.alookup("cordless drill", 3)
    many = await service.alookup_many(["cordless drill", "phone case"], 3)
    assert many[0] == one and len(many[1]) == 3
    assert await service.alookup_many([], 3) == []
