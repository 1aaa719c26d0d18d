"""The backbone a hidden-state head reads, in int8: real torch quantization of the tiny base model."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_items

pytestmark = pytest.mark.training  # runs the real transformers model

TEXTS = ["a blender, 600 watts, glass jar", "a cordless drill with two batteries and a case " * 4]


def test_int8_replaces_the_decoders_linear_layers_and_keeps_the_states_close(tiny_model_dir):
    import torch

    from app.estimators.backbone import load_backbone
    from app.estimators.llm_head import hidden_features

    _, model = load_backbone(str(tiny_model_dir), 2, "bfloat16", "int8")
    decoder = model.get_decoder()
    assert not [name for name, module in decoder.named_modules() if type(module) is torch.nn.Linear]
    assert [name for name, module in decoder.named_modules() if "quantized" in type(module).__module__]
    assert next(decoder.embed_tokens.parameters()).dtype == torch.float32  # the rest computes in float32

    exact = hidden_features(tiny_model_dir, TEXTS, progress=False, dtype="float32")
    int8 = hidden_features(tiny_model_dir, TEXTS, progress=False, quantize="int8")
    assert exact.shape == int8.shape and (exact != int8).any()
    cosine = torch.nn.functional.cosine_similarity(torch.from_numpy(exact), torch.from_numpy(int8), dim=1)
    assert (cosine > 0.95).all(), cosine  # quantization noise, not another model


def test_an_int8_head_is_fitted_saved_and_served_in_int8(tiny_model_dir, tmp_path):
    from app.estimators.base import EstimatorOptions, create
    from app.estimators.knowledge import KnowledgeEstimator
    from app.estimators.storage import SavedEstimatorError
    from tests.conftest import tiny_engine_settings

    items = make_items(40, seed=5)
    head = KnowledgeEstimator(model_dir=tiny_model_dir, depth=2, layers=(1, 2), quantize="int8").fit(items)
    plain = KnowledgeEstimator(head.model, tiny_model_dir, depth=2, layers=(1, 2))
    assert head.predict(items[:5]) != pytest.approx(plain.predict(items[:5]), rel=1e-9)  # int8 features read

    head.save(tmp_path / "head")
    meta_file = tmp_path / "head" / "estimator.json"
    assert json.loads(meta_file.read_text())["quantize"] == "int8"
    options = EstimatorOptions(settings=tiny_engine_settings(tiny_model_dir))
    loaded = create(str(tmp_path / "head"), options)
    assert loaded.quantize == "int8" and loaded.predict(items[:5]) == pytest.approx(head.predict(items[:5]))

    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "quantize"}))
    assert create(str(tmp_path / "head"), options).quantize == "none"  # an older folder: as it was fitted
    meta_file.write_text(json.dumps(meta | {"quantize": "int4"}))
    with pytest.raises(SavedEstimatorError, match="bad quantize 'int4'"):
        create(str(tmp_path / "head"), options)
    with pytest.raises(ValueError, match="quantize must be one of none, int8"):
        KnowledgeEstimator(head.model, tiny_model_dir, quantize="fp4").predict(items[:1])


def test_int8_rows_are_cached_apart_from_the_others(tiny_model_dir):
    from app.estimators.llm_head import LAYERS, _namespace

    plain = _namespace(tiny_model_dir, LAYERS, 16, "bfloat16", 140)
    assert plain == _namespace(tiny_model_dir, LAYERS, 16, "bfloat16", 140, "none")  # earlier rows still read
    assert _namespace(tiny_model_dir, LAYERS, 16, "float32", 140, "int8") not in (
        plain, _namespace(tiny_model_dir, LAYERS, 16, "float32", 140))
