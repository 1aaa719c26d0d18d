"""llm-head: hidden states of the real (tiny, random) base model through transformers, ridge on top."""

from __future__ import annotations

import math

import pytest

from tests.factories import make_items

pytestmark = pytest.mark.training  # runs the real transformers model


@pytest.fixture(scope="module")
def fitted(tiny_model_dir):
    from app.estimators.llm_head import LlmHeadEstimator

    return LlmHeadEstimator(model_dir=tiny_model_dir).fit(make_items(60, seed=1))


def test_features_have_one_row_per_text_in_order(tiny_model_dir):
    from app.estimators.llm_head import hidden_features

    texts = ["short", "a much longer description " * 20, "short"]
    features = hidden_features(tiny_model_dir, texts, progress=False)
    assert features.shape[0] == 3
    assert features.shape[1] % 2 == 0 and features.shape[1] >= 2 * 64
    # Sorting by length for batching must not shuffle rows: equal texts give equal rows.
    assert (features[0] == features[2]).all()
    assert not (features[0] == features[1]).all()


def test_features_skip_the_vocabulary_projection_and_match_the_causal_lm(tiny_model_dir):
    """The head reads hidden states only: the LM head (logits over the whole vocabulary) never runs,
    and the states are the ones the causal LM itself would return."""
    import torch

    from app.estimators.backbone import load_backbone
    from app.estimators.llm_head import DEPTH, LAYERS, hidden_features
    from app.model.prompt import build_prompt

    tokenizer, model = load_backbone(str(tiny_model_dir), DEPTH)
    texts = ["Acme lamp, brass, 40 W", "a much longer description of a kitchen mixer " * 6]
    calls = []
    hook = model.get_output_embeddings().register_forward_hook(lambda *args: calls.append(1))
    try:
        hidden_features(tiny_model_dir, texts, progress=False)
    finally:
        hook.remove()
    assert calls == []
    features = hidden_features(tiny_model_dir, texts[:1], progress=False)  # one text: unpadded, as below
    enc = tokenizer([build_prompt(texts[0])], return_tensors="pt")
    with torch.inference_mode():
        states = model(**enc, output_hidden_states=True).hidden_states
    count = len(states)
    deepest = states[min(max(LAYERS[-1], -count), count - 1)].float()
    # the last pair of columns of a row: that layer's [mean, last token]
    width = deepest.shape[-1]
    assert torch.allclose(torch.from_numpy(features[0, -width:]), deepest[0, -1], atol=1e-5)
    assert torch.allclose(torch.from_numpy(features[0, -2 * width:-width]), deepest[0].mean(dim=0), atol=1e-5)


def test_fitted_head_beats_a_constant_on_its_items(fitted):
    # The synthetic items' text names their kind, and kinds differ in price by 50x: a head on the
    # hidden states must separate them far better than the mean (even with random weights).
    from app.evaluation import score

    items = make_items(60, seed=1)
    guesses = fitted.predict(items)
    assert all(math.isfinite(g) and g >= 0 for g in guesses)
    mean = sum(i.price for i in items) / len(items)
    truths = [i.price for i in items]
    assert score(truths, guesses).mean_error < 0.7 * score(truths, [mean] * len(items)).mean_error


def test_save_load_round_trip_and_base_mismatch(fitted, tiny_model_dir, tmp_path, tokenizer_dir):
    from app.estimators.base import EstimatorOptions, create
    from app.estimators.storage import SavedEstimatorError
    from tests.conftest import tiny_engine_settings
    from tests.tiny_model import build_tiny_llama

    fitted.save(tmp_path / "head")
    items = make_items(5, seed=9)
    loaded = create(str(tmp_path / "head"), EstimatorOptions(settings=tiny_engine_settings(tiny_model_dir)))
    assert loaded.predict(items) == pytest.approx(fitted.predict(items))

    other = build_tiny_llama(tmp_path / "store" / "base" / "other", tokenizer_dir, seed=7)
    with pytest.raises(SavedEstimatorError, match="fitted on base model"):
        create(str(tmp_path / "head"), EstimatorOptions(settings=tiny_engine_settings(other)))


def test_a_saved_head_reads_its_own_base_when_another_is_served(fitted, tiny_model_dir, tmp_path, tokenizer_dir):
    """Serving another base in vLLM leaves the head on the base it was fitted on, found by name in the
    store; the fingerprint still guards that folder."""
    import shutil

    from app.estimators.base import EstimatorOptions, create
    from app.estimators.storage import SavedEstimatorError
    from tests.conftest import tiny_engine_settings
    from tests.tiny_model import build_tiny_llama

    fitted.save(tmp_path / "head")
    store_base = tmp_path / "store" / "base"
    own = store_base / tiny_model_dir.name
    shutil.copytree(tiny_model_dir, own)
    served = build_tiny_llama(store_base / "served", tokenizer_dir, seed=7)
    items = make_items(5, seed=9)
    loaded = create(str(tmp_path / "head"), EstimatorOptions(settings=tiny_engine_settings(served)))
    assert loaded.model_dir == own
    assert loaded.predict(items) == pytest.approx(fitted.predict(items))

    shutil.rmtree(own)
    build_tiny_llama(own, tokenizer_dir, seed=11)  # the same name, other weights
    with pytest.raises(SavedEstimatorError, match="fitted on base model"):
        create(str(tmp_path / "head"), EstimatorOptions(settings=tiny_engine_settings(served)))


def test_depth_runs_only_the_first_layers(tiny_model_dir):
    # depth 1 of the tiny model's 2 layers: the last state read is layer 1's, not the whole model's.
    from app.estimators.llm_head import hidden_features

    texts = ["a blender, 600 watts", "a cordless drill with two batteries"]
    cut = hidden_features(tiny_model_dir, texts, layers=(1,), progress=False, depth=1)
    whole = hidden_features(tiny_model_dir, texts, layers=(1,), progress=False, depth=None)
    assert cut.shape == whole.shape
    assert not (cut == whole).all()  # whole: index 1 is layer 1's output before the final norm
    assert (hidden_features(tiny_model_dir, texts, layers=(-1,), progress=False, depth=1)
            != hidden_features(tiny_model_dir, texts, layers=(-1,), progress=False, depth=None)).any()


def test_depth_and_layers_are_saved_and_an_older_folder_is_read_as_fitted(fitted, tiny_model_dir, tmp_path):
    import json

    from app.estimators.base import EstimatorOptions, create
    from app.estimators.llm_head import DEPTH, LAYERS, LEGACY, LlmHeadEstimator
    from tests.conftest import tiny_engine_settings

    options = EstimatorOptions(settings=tiny_engine_settings(tiny_model_dir))
    fitted.save(tmp_path / "new")
    meta = json.loads((tmp_path / "new" / "estimator.json").read_text())
    assert (meta["depth"], meta["layers"]) == (DEPTH, list(LAYERS))
    loaded = create(str(tmp_path / "new"), options)
    assert (loaded.depth, loaded.layers) == (DEPTH, tuple(LAYERS))

    # A folder written before depth was recorded (the first shipped bundle's) read the whole model's
    # layers -1, -4, -8: it is served that way, not with this release's defaults.
    old = LlmHeadEstimator(fitted.model, tiny_model_dir, depth=None, layers=(-1, -4, -8))
    old.save(tmp_path / "old")
    meta_file = tmp_path / "old" / "estimator.json"
    meta = json.loads(meta_file.read_text())
    del meta["depth"]
    meta_file.write_text(json.dumps(meta))
    reread = create(str(tmp_path / "old"), options)
    assert (reread.depth, list(reread.layers)) == (LEGACY["depth"], LEGACY["layers"])


def test_a_cut_load_is_checked_quietly(tiny_model_dir):
    # transformers reports the skipped layers' weights as "unexpected" on every load; the head
    # silences that report and checks the load itself. Silencing it must not set off transformers'
    # tensor-parallel check, which warns on another logger that the layer norms "were not sharded".
    import logging

    from app.estimators.backbone import load_backbone

    class Records(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    records = Records()
    logger = logging.getLogger("transformers")  # every transformers logger reports to this one
    logger.addHandler(records)
    try:
        load_backbone.cache_clear()
        _, model = load_backbone(str(tiny_model_dir), 1)
    finally:
        logger.removeHandler(records)
        load_backbone.cache_clear()
    assert len(model.model.layers) == 1
    assert not [m for m in records.messages if "LOAD REPORT" in m or "were not sharded" in m]


def test_check_cut_load_accepts_only_weights_of_skipped_layers():
    from app.estimators.backbone import check_cut_load

    skipped = {"missing_keys": [], "unexpected_keys": ["model.layers.16.mlp.up_proj.weight", "model.layers.29.input_layernorm.weight"]}
    check_cut_load(skipped, 16, "base")
    with pytest.raises(RuntimeError, match="unexpected"):
        check_cut_load({"unexpected_keys": ["model.layers.3.mlp.up_proj.weight"]}, 16, "base")
    with pytest.raises(RuntimeError, match="missing"):
        check_cut_load({"missing_keys": ["model.norm.weight"]}, 16, "base")
    with pytest.raises(RuntimeError, match="unexpected"):
        check_cut_load({"unexpected_keys": ["lm_head.bias"]}, 16, "base")


def test_a_head_that_reads_titles_sees_only_the_title_and_is_saved_so(tiny_model_dir, tmp_path):
    """reads=title: fitted and answering on each item's title alone (what a title-only request sends),
    so a long description costs no more than its title; the choice is saved and read back."""
    from app.estimators.base import EstimatorOptions, create
    from app.estimators.llm_head import LlmHeadEstimator
    from tests.conftest import tiny_engine_settings

    items = make_items(40, seed=4)
    head = LlmHeadEstimator(model_dir=tiny_model_dir, reads="title").fit(items)
    as_titles = [item.title_only() for item in items[:5]]
    assert head.predict(items[:5]) == pytest.approx(head.predict(as_titles))  # the rest of the text is not read
    head.save(tmp_path / "head")
    loaded = create(str(tmp_path / "head"), EstimatorOptions(settings=tiny_engine_settings(tiny_model_dir)))
    assert loaded.reads == "title" and loaded.predict(items[:5]) == pytest.approx(head.predict(items[:5]))
    with pytest.raises(ValueError, match="reads must be one of"):
        LlmHeadEstimator(model_dir=tiny_model_dir, reads="body").inputs(items[:1])


def test_tokens_cut_the_text_and_are_saved_and_read_back(fitted, tiny_model_dir, tmp_path):
    """tokens: the text is cut to that many tokens before the prompt (a cheaper forward pass for a
    large base); recorded in the saved folder and served so; a folder that records none read 140."""
    import json

    from app.estimators.base import EstimatorOptions, create
    from app.estimators.llm_head import TEXT_TOKENS, LlmHeadEstimator
    from app.estimators.storage import SavedEstimatorError
    from tests.conftest import tiny_engine_settings

    long_text = "a cordless drill with two batteries, a charger and a case " * 8
    items = make_items(2, seed=3)
    short = hidden_features_of(tiny_model_dir, [long_text], tokens=16)
    assert (short == hidden_features_of(tiny_model_dir, [long_text[:200]], tokens=16)).all()  # past 16 tokens: unread
    assert (short != hidden_features_of(tiny_model_dir, [long_text], tokens=TEXT_TOKENS)).any()

    head = LlmHeadEstimator(fitted.model, tiny_model_dir, tokens=16)
    head.save(tmp_path / "cut")
    options = EstimatorOptions(settings=tiny_engine_settings(tiny_model_dir))
    loaded = create(str(tmp_path / "cut"), options)
    assert loaded.tokens == 16 and loaded.predict(items) == head.predict(items)
    meta_file = tmp_path / "cut" / "estimator.json"
    meta = json.loads(meta_file.read_text())
    del meta["tokens"]
    meta_file.write_text(json.dumps(meta))
    assert create(str(tmp_path / "cut"), options).tokens == TEXT_TOKENS
    meta_file.write_text(json.dumps(meta | {"tokens": "many"}))
    with pytest.raises(SavedEstimatorError, match="bad tokens"):
        create(str(tmp_path / "cut"), options)
    with pytest.raises(ValueError, match="tokens must be"):
        LlmHeadEstimator(fitted.model, tiny_model_dir, tokens=2).predict(items)


def hidden_features_of(model_dir, texts, tokens):
    from app.estimators.llm_head import hidden_features

    return hidden_features(model_dir, texts, progress=False, tokens=tokens)
