"""Tiny priced data for the build tests: 150 training items and 60 held-out ones (synthetic, seeded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model.item_files import write_items
from tests.factories import make_items


@pytest.fixture
def folder(tmp_path) -> Path:
    write_items(tmp_path / "train.jsonl", make_items(150, seed=1))
    write_items(tmp_path / "heldout.jsonl", make_items(60, seed=2))
    return tmp_path
