"""The ensemble's members read the item text cut as the curated texts they were fitted on are; the
LLM member's text is not cut here (its prompt has its own budget)."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.ensemble.bundle import Bundle
from app.ensemble.member_text import member_text_cutter
from app.ensemble.runner import MemberRunner
from app.ensemble.service import EnsembleService
from app.model.prices import PriceEstimate
from app.model.cutter import token_cutter
from tests.api.ensemble_fixtures import write_test_bundle
from tests.factories import make_items

LONG = "Acme cordless drill with two batteries and a charger. " * 40


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def test_the_cutter_comes_from_the_served_base_and_setting(tiny_model_dir, tmp_path):
    settings = Settings(models_dir=tiny_model_dir.parent.parent, base_model=str(tiny_model_dir), member_text_tokens=7)
    cut = member_text_cutter(settings)
    assert cut is not None and cut(LONG) != LONG
    assert member_text_cutter(settings.model_copy(update={"member_text_tokens": 0})) is None
    # no tokenizer (a fake base): the members read the whole text, the service still starts
    fake = tmp_path / "base" / "fake"
    fake.mkdir(parents=True)
    (fake / "config.json").write_text("{}")
    assert member_text_cutter(Settings(models_dir=tmp_path, base_model=str(fake))) is None


class Recorder:
    def __init__(self):
        self.texts: list[str] = []

    def predict(self, items):
        self.texts.extend(i.text for i in items)
        return [10.0] * len(items)


async def test_members_get_the_cut_text_and_the_llm_the_whole_one(tmp_path, tokenizer):
    recorder = Recorder()
    service = EnsembleService(Bundle.load(write_test_bundle(tmp_path)), {"constant": MemberRunner("constant", recorder)},
                              "llm", text_cut=token_cutter(tokenizer, 9))
    items = [item.model_copy(update={"text": LONG}) for item in make_items(2)]
    asked = []

    async def llm_call(only=None):
        asked.append(True)
        return [PriceEstimate(price=20.0, low=15.0, high=25.0, text="20")] * 2, None

    answers = await service.answer(items, llm_call)
    assert asked and [a.components["llm"] for a in answers] == [20.0, 20.0]
    assert recorder.texts == [token_cutter(tokenizer, 9)(LONG)] * 2 and recorder.texts[0] != LONG
    assert all(item.text == LONG for item in items)  # the request's own items are not changed
