"""A second ridge for items that are nothing but a title, on the same hidden states (`title_head`).

A client sending only a title gets an item of richness class TITLE (app.model.richness). A head fitted
on whole texts reads a title as a short, poor description and pulls its price to the middle; one head
fitted on both kinds reads titles far better but whole texts worse (docs/ensemble.md). With
`title_head: true` an llm-head or knowledge member fits a second ridge on its training items' titles
alone and answers title-only items with it; richer items get the first head's answer, unchanged. It
costs no second forward pass: a request's text goes through the model once, only the ridge differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.estimators.sklearn_base import from_log, to_log
from app.estimators.storage import SavedEstimatorError, load_model, read_meta
from app.model.items import Item

TITLE_MODEL_FILE = "title_model.skops"


class TitleHead:
    """Mixed into a SklearnEstimator whose `inputs` are a feature matrix (llm-head, knowledge)."""

    title_head: bool = False
    title_model: object | None = None

    def fit_inputs(self, inputs, items: Sequence[Item]):
        super().fit_inputs(inputs, items)
        self.title_model = None
        if self.title_head:
            titles = [item.title_only() for item in items]
            self.title_model = self.build_model().fit(self.inputs(titles), to_log([i.price for i in titles]))
        return self

    def predict(self, items: Sequence[Item]) -> list[float]:
        if self.title_model is None or self.model is None or not items:
            return super().predict(items)
        from app.model.richness import TITLE, richness

        features = self.inputs(items)  # one forward pass for every item; the head differs by class
        prices = from_log(self.model.predict(features))
        titles = [i for i, item in enumerate(items) if richness(item) == TITLE]
        if titles:
            for i, price in zip(titles, from_log(self.title_model.predict(features[titles])), strict=True):
                prices[i] = price
        return prices

    def meta(self) -> dict:
        return super().meta() | {"title_head": self.title_model is not None}

    def more_models(self) -> dict[str, object]:
        return {TITLE_MODEL_FILE: self.title_model} if self.title_model is not None else {}

    def load_title_head(self, directory: Path):
        """After the first head is loaded: the title head too when the folder records one."""
        if read_meta(directory).get("title_head"):
            path = Path(directory) / TITLE_MODEL_FILE
            if not path.is_file():
                raise SavedEstimatorError(f"{directory}: title_head is recorded but {TITLE_MODEL_FILE} is missing")
            self.title_head, self.title_model = True, load_model(path)
        return self
