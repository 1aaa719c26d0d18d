"""knowledge: a second base model's hidden states (its own, not the served one's) read out by a
ridge, saved with its depth and layers, loaded back and served as an ensemble member (the real,
tiny, random base through transformers)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from tests.factories import make_items

pytestmark = pytest.mark.training  # runs the real transformers model


def test_knowledge_reads_its_own_base_and_is_saved_loaded_and_served(tmp_path, tokenizer_dir):
    from app.ensemble.service import load_ensemble
    from app.estimators.base import EstimatorOptions, create
    from app.estimators.knowledge import DEPTH, LAYERS
    from tests.conftest import tiny_engine_settings
    from tests.tiny_model import build_tiny_llama

    store = tmp_path / "store"
    own = build_tiny_llama(store / "base" / "knows", tokenizer_dir, seed=3)
    served = build_tiny_llama(store / "base" / "served", tokenizer_dir, seed=5)
    settings = tiny_engine_settings(served, knowledge_base="knows")
    items = make_items(60, seed=1)

    knowledge = create("knowledge", EstimatorOptions(settings=settings))
    assert knowledge.model_dir == own and (knowledge.depth, knowledge.layers) == (DEPTH, LAYERS)
    knowledge.fit(items)
    knowledge.save(tmp_path / "work" / "knowledge")
    meta = json.loads((tmp_path / "work" / "knowledge" / "estimator.json").read_text())
    assert (meta["name"], meta["base_model"], meta["depth"], meta["layers"]) == ("knowledge", "knows", DEPTH, list(LAYERS))

    loaded = create(str(tmp_path / "work" / "knowledge"), EstimatorOptions(settings=settings))
    assert type(loaded).__name__ == "KnowledgeEstimator" and loaded.model_dir == own
    assert loaded.predict(items[:5]) == pytest.approx(knowledge.predict(items[:5]))

    bundle = _bundle_with_a_constant(tmp_path, store, items, seed=0)
    service, reason = load_ensemble(settings.model_copy(update={"estimator": "ensemble"}), bundle)
    assert service is not None, reason
    assert "knowledge" in service.describe()["loaded"]
    answered = asyncio.run(service.answer(items[:3], llm_call=None))
    assert all(a.components["knowledge"] is not None and a.low <= a.price <= a.high for a in answered)
    assert set(answered[0].seconds) == {"knowledge", "constant"}  # each member's time on the call
    asyncio.run(service.close())


def test_a_bundle_whose_knowledge_base_is_not_here_serves_with_the_other_members(tmp_path, tokenizer_dir):
    """A replica without the 1.5B base (not prepared on this machine) still serves the bundle: the
    knowledge member is reported missing with the reason, and the stack answers without it."""
    from app.ensemble.service import load_ensemble
    from app.estimators.base import EstimatorOptions, create
    from tests.conftest import tiny_engine_settings
    from tests.tiny_model import build_tiny_llama

    store = tmp_path / "store"
    own = build_tiny_llama(store / "base" / "knows", tokenizer_dir, seed=3)
    served = build_tiny_llama(store / "base" / "served", tokenizer_dir, seed=5)
    settings = tiny_engine_settings(served, knowledge_base="knows")
    items = make_items(40, seed=2)
    create("knowledge", EstimatorOptions(settings=settings)).fit(items).save(tmp_path / "work" / "knowledge")
    bundle = _bundle_with_a_constant(tmp_path, store, items, seed=1)
    import shutil

    shutil.rmtree(own)  # this replica never prepared the knowledge member's base
    service, reason = load_ensemble(settings.model_copy(update={"estimator": "ensemble"}), bundle)
    assert service is not None, reason
    described = service.describe()
    assert described["loaded"] == ["constant"] and "knowledge" in described["missing"], described
    answered = asyncio.run(service.answer(items[:3], llm_call=None))
    assert all(a.components.get("knowledge") is None and 0 < a.low <= a.price <= a.high for a in answered)
    asyncio.run(service.close())


def _bundle_with_a_constant(tmp_path, store, items, seed: int):
    """A published bundle of the knowledge member saved in <tmp>/work/knowledge and a constant one,
    stacked on noisy answers (the stack's own fitting is tested elsewhere)."""
    from app.ensemble.bundle import write_bundle
    from app.ensemble.fit import fit_stacks
    from app.estimators.base import EstimatorOptions, create

    create("constant", EstimatorOptions(seed=0)).fit(items).save(tmp_path / "work" / "constant")
    truths = [item.price for item in items]
    rng = np.random.default_rng(seed)
    answers = {m: list(np.array(truths) * np.exp(rng.normal(0, 0.3, len(truths)))) for m in ("knowledge", "constant")}
    return write_bundle(store / "ensembles" / "pricer-ensemble" / "20260101-000000", fit_stacks(answers, truths, 0.8, 5, 0),
                        {"name": "pricer-ensemble", "version": "20260101-000000",
                         "members": [{"name": "knowledge"}, {"name": "constant"}]},
                        {"knowledge": tmp_path / "work" / "knowledge", "constant": tmp_path / "work" / "constant"})


def test_a_title_head_answers_titles_and_the_full_head_everything_else(tmp_path, tokenizer_dir):
    """title_head (app.estimators.title_head, llm-head's too): a second ridge fitted on the training
    items' titles answers items that are only a title; richer items get the first head's answer,
    unchanged; both heads saved and read back."""
    from app.estimators.base import EstimatorOptions, create
    from app.estimators.title_head import TITLE_MODEL_FILE
    from app.estimators.storage import SavedEstimatorError
    from app.model.richness import TITLE, richness
    from tests.conftest import tiny_engine_settings
    from tests.tiny_model import build_tiny_llama

    base = build_tiny_llama(tmp_path / "store" / "base" / "knows", tokenizer_dir, seed=3)
    settings = tiny_engine_settings(base, knowledge_base="knows")
    options = EstimatorOptions(settings=settings)
    items = make_items(60, seed=1)
    one = create("knowledge", options).fit(items)
    two = create("knowledge", options)
    two.title_head = True
    two.fit(items)
    asked = items[:4] + [i.title_only() for i in items[:4]]
    assert [richness(i) for i in asked].count(TITLE) == 4
    both, single = two.predict(asked), one.predict(asked)  # the same batch (bf16 states move with padding)
    assert both[:4] == pytest.approx(single[:4])  # the full head is the one-head member's
    assert both[4:] != pytest.approx(single[4:], rel=0.05)  # titles: the other head
    assert two.predict(asked[4:]) == pytest.approx(both[4:], rel=0.02)  # alone or beside full items

    two.save(tmp_path / "two")
    assert (tmp_path / "two" / TITLE_MODEL_FILE).is_file()
    loaded = create(str(tmp_path / "two"), options)
    assert loaded.title_model is not None and loaded.predict(asked) == pytest.approx(both)
    one.save(tmp_path / "one")
    assert not (tmp_path / "one" / TITLE_MODEL_FILE).exists()
    assert create(str(tmp_path / "one"), options).title_model is None
    (tmp_path / "two" / TITLE_MODEL_FILE).unlink()
    with pytest.raises(SavedEstimatorError, match="title_head is recorded"):
        create(str(tmp_path / "two"), options)
