"""Prompts are cut to the token budget with the model's own tokenizer, never rejected."""

from app.model.cutter import PromptCutter, token_cutter
from app.model.prompt import ANSWER_PREFIX, QUESTION, build_prompt


def _cutter(tokenizer_dir, budget):
    from transformers import AutoTokenizer

    return PromptCutter(AutoTokenizer.from_pretrained(tokenizer_dir), budget)


def test_short_text_is_the_plain_prompt(tokenizer_dir):
    cutter = _cutter(tokenizer_dir, 100)
    ids = cutter.prompt_ids_one("Acme desk lamp\nA small lamp.")
    assert ids == cutter.tokenizer(build_prompt("Acme desk lamp\nA small lamp.")).input_ids


def test_long_text_is_cut_to_the_budget_keeping_question_and_answer_prefix(tokenizer_dir):
    cutter = _cutter(tokenizer_dir, 60)
    text = "Acme espresso machine\n" + "steam wand and grinder " * 500
    ids = cutter.prompt_ids_one(text)
    assert len(ids) <= 60
    prompt = cutter.tokenizer.decode(ids)
    assert prompt.startswith(QUESTION)
    assert prompt.endswith(ANSWER_PREFIX)
    assert "Acme espresso machine" in prompt
    assert len(ids) >= 55  # cut at the budget, not far below it


def test_megabyte_description_and_lone_surrogates_do_not_fail(tokenizer_dir):
    cutter = _cutter(tokenizer_dir, 60)
    assert len(cutter.prompt_ids_one("x" * 1_000_000)) <= 60
    assert len(cutter.prompt_ids_one("lamp \ud800 shade " * 100)) <= 60
    assert len(cutter.prompt_ids_one("")) == cutter.overhead


def test_budget_below_the_question_keeps_only_the_question(tokenizer_dir):
    cutter = _cutter(tokenizer_dir, 8)
    assert cutter.tokenizer.decode(cutter.prompt_ids_one("a lamp")) == build_prompt("")


def test_a_bare_text_is_cut_to_its_first_tokens_and_a_short_one_is_left_alone(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    long = "Acme cordless drill with two batteries and a charger. " * 40
    cut = token_cutter(tokenizer, 12)
    short = cut(long)
    assert len(tokenizer.encode(short, add_special_tokens=False)) <= 12 and long.startswith(short.strip()[:20])
    assert cut("Acme drill") == "Acme drill"
