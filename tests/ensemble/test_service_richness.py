"""The service answers each item with its richness class's interval: a title-only request gets the
title offsets, a full description the full ones; GET /v1/ensemble's listing shows them per class."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.ensemble.bundle import Bundle, write_bundle
from app.ensemble.fit import fit_stacks
from app.ensemble.rows import StackRows
from app.ensemble.runner import MemberRunner
from app.ensemble.service import EnsembleService
from app.estimators.base import EstimatorOptions, create
from app.model.items import Item
from tests.factories import make_items

NAMES = ("bow-ridge", "constant")
N = 60


@pytest.fixture
def service(tmp_path):
    """bow-ridge and constant fitted on make_items; a Mondrian stack fitted on synthetic answers: full rows
    close to the truth, title copies far noisier (so the title interval is much wider)."""
    saved = {}
    for name in NAMES:
        estimator = create(name, EstimatorOptions(seed=0))
        estimator.fit(make_items(60))
        estimator.save(tmp_path / "work" / name)
        saved[name] = tmp_path / "work" / name
    rng = np.random.default_rng(0)
    truths = np.exp(rng.normal(4.5, 1.0, N))
    answers = {m: list(truths * np.exp(rng.normal(0, 0.2, N))) + list(truths * np.exp(rng.normal(0, 1.0, N)))
               for m in NAMES}
    rows = StackRows.of(["full"] * N + ["title"] * N, list(range(N)) * 2, [False] * N + [True] * N, mondrian=True)
    stack = fit_stacks(answers, list(truths) * 2, 0.8, 5, 0, rows=rows)
    manifest = {"name": "pricer-ensemble", "version": "v1", "members": [{"name": n} for n in NAMES]}
    bundle = Bundle.load(write_bundle(tmp_path / "ensembles" / "pricer-ensemble" / "v1", stack, manifest, saved))
    runners = {n: MemberRunner(n, create(str(bundle.member_folder(n)), EstimatorOptions())) for n in NAMES}
    return EnsembleService(bundle, runners, None)


async def _no_llm(**kwargs):
    raise AssertionError("no llm member in this bundle")


async def test_a_titles_only_request_gets_the_title_offsets(service):
    full = Item(title="Acme drill", category="Tools", price=1.0,
                text="Acme drill\n" + " ".join(f"cordless brushless motor part {i}" for i in range(10)))
    title = Item(title="Acme drill", price=1.0, text="Acme drill")  # what the API builds from {"title": ...}
    answers = await service.answer([title, full], _no_llm)
    by = service.bundle.ensemble.subsets["bow-ridge+constant"]["offsets_by_richness"]
    for answer, klass in zip(answers, ("title", "full"), strict=True):
        assert answer.richness == klass
        low, high = by[klass]["offsets"]
        point = math.log1p(answer.price)
        assert answer.low == pytest.approx(math.expm1(point + low)) and answer.high == pytest.approx(math.expm1(point + high))
    assert answers[0].high / answers[0].price > answers[1].high / answers[1].price  # the title interval is wider
    shown = service.describe()["interval"]
    assert shown["by_richness"]["title"]["offsets"] == by["title"]["offsets"] and shown["by_richness"]["short"]["pooled"]
    await service.close()
