"""Tiny priced data for the build tests: 150 training items and 60 held-out ones (synthetic, seeded);
for the promotion tests, 80 held-out items and saved members fitted on 120 others (`val`, `fitted`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.estimators.base import EstimatorOptions, create
from app.evaluation.runner import predict_all
from app.model.item_files import write_items
from tests.factories import make_items


@pytest.fixture
def folder(tmp_path) -> Path:
    write_items(tmp_path / "train.jsonl", make_items(150, seed=1))
    write_items(tmp_path / "heldout.jsonl", make_items(60, seed=2))
    return tmp_path


@pytest.fixture(scope="module")
def val():
    return make_items(80, seed=2)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, val):
    """Saved member folders fitted on train only, and each one's answers on val."""
    root, train = tmp_path_factory.mktemp("members"), make_items(120, seed=1)
    folders, answers = {}, {}
    for name in ("constant", "bow-ridge", "features-lr"):
        estimator = create(name, EstimatorOptions(seed=0))
        estimator.fit(train)
        estimator.save(root / name)
        folders[name] = root / name
        answers[name] = predict_all(estimator, val)
    return folders, answers
