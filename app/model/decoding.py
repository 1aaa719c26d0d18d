"""Price decoding: a distribution over prices from ONE greedy generation's per-step top-k logprobs.

Pure Python over plain data, so that serving (vLLM logprobs: `steps_from_vllm`) and training
validation (transformers `generate(..., output_scores=True)`: `steps_from_scores`) share one
function. app.model.spec.ServingSpec fixes the point rule, the interval level and the answer tokens. A *step* is the token the model wrote
greedily and the top-k alternatives at that position, with log-probabilities:
`Step(chosen="1", top=[("1", -1.2), ("2", -1.4), (".", -7.0), ...])`.

The answer is generated with only number tokens, "." and end-of-sequence allowed
(`answer_token_ids`), and the logprobs are the *processed* ones (vLLM `logprobs_mode=
"processed_logprobs"`), so each step's alternatives are the model's own probabilities
renormalised over "a digit, or the number ends here". The model therefore always writes a number.

Two tokenizer families:

* **number tokens** (Llama 3: every number up to 999 is one token). The course's method: the
  distribution is the top-k numeric alternatives of the FIRST answer token, renormalised; the point
  price is their probability-weighted average.
* **digit tokens** (SmolLM2: only 0-9 are tokens). Position i of the integer part has its own
  distribution over the ten digits and "the number ends" ("." or end-of-sequence). We only see the
  conditionals along the greedy path, so we take them as if they held for every prefix
  (approximation): the first digit comes from step 1, the length from the end-probability at each
  later step, and each later digit from its step's digit probabilities. The distribution over
  integers is built position by position, keeping the `BEAM` most likely prefixes. Past the step
  where the greedy answer ended there are no more conditionals; mass still "open" there ends there.

The point price is the distribution's mean for number tokens and its median for digit tokens (or
any of mean, median, greedy text: `point=`), and the
interval `[low, high]` its central quantiles at `level` (e.g. 0.8: the 10% and 90% quantiles),
widened if needed so that it holds the point price.

No digits at all in the first step (possible only for an unconstrained generation): NoPriceError.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.model.prices import NoPriceError, PriceEstimate

Family = Literal["number", "digit"]
Point = Literal["mean", "median", "greedy"]

ANSWER_MAX_TOKENS = 6  # "999.": 4 digit tokens; the stop string "." usually ends it sooner
ANSWER_STOP = "."  # the integer part is all we read: stop generating at the decimal point
BEAM = 64  # most prefixes kept per digit position
MIN_PROB = 1e-6

_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Step:
    chosen: str
    top: Sequence[tuple[str, float]]  # (token text, logprob), any order; may include `chosen`


def is_number_token(text: str) -> bool:
    return bool(_DIGITS.fullmatch(text))


def answer_token_ids(tokenizer) -> list[int]:
    """Token ids an answer may use: number tokens, "." and end-of-sequence."""
    allowed = set()
    for token, token_id in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token])
        if is_number_token(text) or text == ANSWER_STOP:
            allowed.add(token_id)
    if tokenizer.eos_token_id is not None:
        allowed.add(tokenizer.eos_token_id)
    return sorted(allowed)


def tokenizer_family(tokenizer) -> Family:
    """"number" when multi-digit numbers are single tokens (Llama 3), else "digit" (SmolLM2)."""
    ids = tokenizer.encode("100", add_special_tokens=False)
    return "number" if len(ids) == 1 else "digit"


def _probabilities(step: Step) -> tuple[dict[str, float], float]:
    """Numeric alternatives -> probability, and the probability that the number ends here,
    both renormalised over the top-k that we see."""
    numbers: dict[str, float] = {}
    total = 0.0
    seen = set()
    for text, logprob in step.top:
        if text in seen or logprob is None or math.isnan(logprob):
            continue
        seen.add(text)
        p = math.exp(logprob)
        total += p
        if is_number_token(text):
            numbers[text] = numbers.get(text, 0.0) + p
    if total <= 0:
        return {}, 1.0
    digit_mass = sum(numbers.values())
    return {t: p / total for t, p in numbers.items()}, max(0.0, 1.0 - digit_mass / total)


def _first(steps: Sequence[Step]) -> dict[str, float]:
    if not steps:
        raise NoPriceError("the model wrote nothing")
    numbers, _ = _probabilities(steps[0])
    if not numbers:
        shown = ", ".join(repr(t) for t, _ in list(steps[0].top)[:5])
        raise NoPriceError(f"no number among the first answer token's alternatives ({shown})")
    mass = sum(numbers.values())
    return {t: p / mass for t, p in numbers.items()}


def number_distribution(steps: Sequence[Step]) -> dict[int, float]:
    """Number-token family (the course's): the first answer token's numeric alternatives."""
    dist: dict[int, float] = {}
    for text, p in _first(steps).items():
        dist[int(text)] = dist.get(int(text), 0.0) + p
    return dist


def digit_distribution(steps: Sequence[Step], beam: int = BEAM) -> dict[int, float]:
    """Digit family: digits position by position along the greedy path (see the module doc)."""
    finished: dict[int, float] = {}
    open_: dict[int, float] = {}
    for text, p in _first(steps).items():
        open_[int(text)] = open_.get(int(text), 0.0) + p
    if not is_number_token(steps[0].chosen):
        open_, finished = {}, open_  # greedy did not write a number: nothing to condition on
    for step in steps[1:]:
        if not open_:
            break
        digits, end = _probabilities(step)
        grown: dict[int, float] = {}
        for value, p in open_.items():
            if end > 0:
                finished[value] = finished.get(value, 0.0) + p * end
            for text, q in digits.items():
                if p * q >= MIN_PROB:
                    nxt = value * 10 ** len(text) + int(text)
                    grown[nxt] = grown.get(nxt, 0.0) + p * q
        open_ = dict(sorted(grown.items(), key=lambda kv: -kv[1])[:beam])
        if not is_number_token(step.chosen):
            break  # the greedy answer ended: no conditionals past this step
    for value, p in open_.items():
        finished[value] = finished.get(value, 0.0) + p
    mass = sum(finished.values())
    return {v: p / mass for v, p in finished.items()}


def quantile(dist: dict[int, float], q: float) -> float:
    """Smallest value whose cumulative probability reaches q."""
    cumulative = 0.0
    items = sorted(dist.items())
    for value, p in items:
        cumulative += p
        if cumulative >= q - 1e-12:
            return float(value)
    return float(items[-1][0])


def greedy_text(steps: Sequence[Step]) -> str:
    return "".join(step.chosen for step in steps)


def default_point(family: Family) -> Point:
    """The course's weighted average for number tokens; the median for digit tokens, where it
    scored better on val (docs/inference.md)."""
    return "mean" if family == "number" else "median"


def estimate_from_steps(steps: Sequence[Step], level: float = 0.8, family: Family | None = None,
                        point: Point | Literal["auto"] | None = None) -> PriceEstimate:
    """Point price and interval from one greedy generation's steps. `family` None: detected from
    the first step (any multi-digit alternative means number tokens). `point` None or "auto":
    default_point(family)."""
    if family is None:
        family = "number" if steps and any(is_number_token(t) and len(t) > 1 for t, _ in steps[0].top) else "digit"
    if point in (None, "auto"):
        point = default_point(family)
    dist = number_distribution(steps) if family == "number" else digit_distribution(steps)
    mean = sum(v * p for v, p in dist.items())
    median = quantile(dist, 0.5)
    text = greedy_text(steps)
    digits = _DIGITS.match(text)  # greedy: the number written, else the median
    price = mean if point == "mean" else median if point == "median" or not digits else float(digits.group(0))
    low = min(quantile(dist, (1 - level) / 2), price)
    high = max(quantile(dist, (1 + level) / 2), price)
    return PriceEstimate(price=float(price), low=float(low), high=float(high), text=text,
                         detail={"family": family, "point": point, "mean": mean, "median": median, "support": len(dist)})


# ---------------------------------------------------------------------------------------------
# transformers: generate(..., output_scores=True, return_dict_in_generate=True) -> steps


def steps_from_scores(scores: Sequence, sequences, prompt_length: int, tokenizer, top_k: int = 20) -> list[list[Step]]:
    """Steps for each row of a batch, from transformers' generate output. `scores` are the
    processed scores per step (shape [batch, vocab]); generate with
    `prefix_allowed_tokens_fn=lambda *_: answer_token_ids(tokenizer)` so they match serving.
    Rows stop at their end-of-sequence token."""
    import torch

    rows: list[list[Step]] = [[] for _ in range(sequences.shape[0])]
    done = [False] * sequences.shape[0]
    for position, step_scores in enumerate(scores):
        logprobs = torch.log_softmax(step_scores.float(), dim=-1)
        values, indices = logprobs.topk(top_k, dim=-1)
        for row in range(sequences.shape[0]):
            if done[row]:
                continue
            chosen_id = int(sequences[row, prompt_length + position])
            chosen = tokenizer.decode([chosen_id])
            top = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values[row], indices[row]) if math.isfinite(float(v))]
            rows[row].append(Step(chosen, top))
            if chosen_id == tokenizer.eos_token_id or chosen == ANSWER_STOP:
                done[row] = True
    return rows


# ---------------------------------------------------------------------------------------------
# vLLM: a CompletionOutput generated with `logprobs=k` -> steps


def steps_from_vllm(completion) -> list[Step]:
    """Steps of one vLLM completion: each generated token and its step's top-k alternatives."""
    return [Step(by_id[token_id].decoded_token if token_id in by_id else "", [(lp.decoded_token, lp.logprob) for lp in by_id.values()])
            for token_id, by_id in zip(completion.token_ids, completion.logprobs or [])]
