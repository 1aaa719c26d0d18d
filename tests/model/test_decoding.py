"""Price decoding on hand-built logprob tables: both tokenizer families, intervals, edge cases."""

from __future__ import annotations

import math

import pytest

from app.model.decoding import Step, digit_distribution, estimate_from_steps, number_distribution, quantile, steps_from_scores
from app.model.prices import NoPriceError


def lp(p: float) -> float:
    return math.log(p)


def step(chosen: str, **probs: float) -> Step:
    """probs keyed by token text; digits as d0..d9 or n<number>, "dot" for ".", "eos"."""
    names = {"dot": ".", "eos": "<|im_end|>"}
    top = []
    for key, p in probs.items():
        text = names.get(key) or key[1:]
        top.append((text, lp(p)))
    return Step(chosen, top)


# --- family (a): numbers up to 999 are single tokens (the course's method)


def test_number_family_is_the_probability_weighted_average_of_the_first_token():
    steps = [step("120", n120=0.5, n100=0.3, n150=0.1, eos=0.1), step(".", dot=1.0)]
    estimate = estimate_from_steps(steps, level=0.8)
    assert estimate.detail["family"] == "number"
    # numeric alternatives renormalised over 0.9: (0.5*120 + 0.3*100 + 0.1*150) / 0.9
    assert estimate.price == pytest.approx((60 + 30 + 15) / 0.9)
    assert number_distribution(steps) == pytest.approx({120: 0.5 / 0.9, 100: 0.3 / 0.9, 150: 0.1 / 0.9})
    assert estimate.low == 100 and estimate.high == 150
    assert estimate.text == "120."


# --- family (b): digit by digit (SmolLM2)


def test_digit_family_certain_answer_is_exact():
    steps = [step("4", d4=1.0), step("2", d2=1.0), step(".", dot=1.0)]
    estimate = estimate_from_steps(steps, level=0.8, family="digit")
    assert (estimate.price, estimate.low, estimate.high) == (42.0, 42.0, 42.0)
    assert estimate.text == "42."


def test_digit_family_length_comes_from_the_end_probability():
    # first digit 1; at the second position: end (0.5) or 2 (0.5); then the greedy "." ends it
    steps = [step("1", d1=1.0), step("2", d2=0.5, dot=0.5), step(".", dot=1.0)]
    dist = digit_distribution(steps)
    assert dist == pytest.approx({1: 0.5, 12: 0.5})
    assert estimate_from_steps(steps, family="digit", point="mean").price == pytest.approx(6.5)


def test_digit_family_combines_positions_along_the_greedy_path():
    steps = [
        step("1", d1=0.6, d2=0.4),
        step("2", d2=0.5, d5=0.5),
        step("0", d0=0.8, dot=0.2),
        step(".", dot=0.9, d0=0.1),
    ]
    dist = digit_distribution(steps)
    # 2-digit numbers ending at step 3 (0.2), 3-digit ending at step 4 (0.8*0.9), 4-digit left open (0.8*0.1)
    assert dist[12] == pytest.approx(0.6 * 0.5 * 0.2)
    assert dist[250] == pytest.approx(0.4 * 0.5 * 0.8 * 0.9)
    assert dist[1200] == pytest.approx(0.6 * 0.5 * 0.8 * 0.1)
    assert sum(dist.values()) == pytest.approx(1.0)
    expected_mean = sum(v * p for v, p in dist.items())
    estimate = estimate_from_steps(steps, level=0.8, family="digit", point="mean")
    assert estimate.price == pytest.approx(expected_mean)
    assert estimate.low <= estimate.price <= estimate.high
    assert estimate.low == quantile(dist, 0.1)
    assert estimate.high == max(quantile(dist, 0.9), estimate.price)  # widened: the 4-digit tail pulls the mean up


def test_median_and_greedy_points():
    steps = [step("1", d1=0.7, d9=0.3), step(".", dot=1.0)]
    assert estimate_from_steps(steps, family="digit", point="median").price == 1
    assert estimate_from_steps(steps, family="digit", point="greedy").price == 1
    assert estimate_from_steps(steps, family="digit", point="mean").price == pytest.approx(0.7 + 2.7)


def test_default_point_is_the_mean_for_number_tokens_and_the_median_for_digits():
    digits = [step("1", d1=0.7, d9=0.3), step(".", dot=1.0)]
    assert estimate_from_steps(digits).price == 1 == estimate_from_steps(digits, point="auto").price
    assert estimate_from_steps(digits).detail["point"] == "median"
    numbers = [step("120", n120=0.5, n100=0.5), step(".", dot=1.0)]
    assert estimate_from_steps(numbers).price == 110
    assert estimate_from_steps(numbers).detail["point"] == "mean"


def test_interval_is_widened_to_hold_the_point():
    # 95% at 10, 5% at 9000: the mean (459.5) lies above the 90% quantile (10)
    steps = [step("1", d1=0.95, d9=0.05), step("0", d0=1.0), step("0", d0=0.05, dot=0.95), step(".", dot=1.0)]
    estimate = estimate_from_steps(steps, level=0.8, family="digit", point="mean")
    assert estimate.low <= estimate.price <= estimate.high
    assert estimate.high > quantile(digit_distribution(steps), 0.9)


def test_generation_cut_by_max_tokens_keeps_the_open_mass():
    steps = [step("9", d9=1.0), step("9", d9=1.0), step("9", d9=1.0)]
    assert digit_distribution(steps) == {999: 1.0}


def test_non_numeric_alternatives_count_as_the_number_ending():
    steps = [step("5", d5=1.0), step("\n", **{"d0": 0.25, "x\n": 0.75})]
    assert digit_distribution(steps) == pytest.approx({5: 0.75, 50: 0.25})


def test_greedy_text_without_a_number_falls_back_to_the_first_steps_digits():
    steps = [step(" about", **{"x about": 0.6, "d3": 0.3, "d7": 0.1}), step(" 3", **{"x 3": 1.0})]
    assert digit_distribution(steps) == pytest.approx({3: 0.75, 7: 0.25})


def test_no_digits_at_all_is_a_clear_error():
    with pytest.raises(NoPriceError, match="no number"):
        estimate_from_steps([step(" duo", **{"x duo": 0.5, "x dots": 0.5})])
    with pytest.raises(NoPriceError, match="nothing"):
        estimate_from_steps([])


def test_scores_from_transformers_become_steps(tokenizer_dir):
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    one, two, dot = (tokenizer.convert_tokens_to_ids(t) for t in ("1", "2", "."))
    vocab = len(tokenizer)
    scores = []
    for probs in ({one: 0.7, two: 0.3}, {two: 0.6, dot: 0.4}, {dot: 1.0}):
        row = torch.full((1, vocab), -math.inf)
        for token_id, p in probs.items():
            row[0, token_id] = math.log(p)
        scores.append(row)
    sequences = torch.tensor([[5, 6, one, two, dot]])
    [steps] = steps_from_scores(scores, sequences, prompt_length=2, tokenizer=tokenizer, top_k=3)
    assert [s.chosen for s in steps] == ["1", "2", "."]
    dist = digit_distribution(steps)
    assert dist == pytest.approx({1: 0.7 * 0.4, 2: 0.3 * 0.4, 12: 0.7 * 0.6, 22: 0.3 * 0.6})
