"""Validation inside training: transformers + peft (the trainer image has no vLLM), asked and read
exactly as the service does (app.model.spec.ServingSpec: the served prompt with the served cut, the
allowed answer tokens, the top-k logprobs of the greedy answer, the served point rule and interval
level), so that a manifest's scores are the scores of what is served, and `best` ranks by them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.adapters.manifest import ValidationScores
from app.model.items import Item
from app.model.prices import NoPriceError

POINTS = ("mean", "median", "greedy")


@dataclass
class Answer:
    """One greedy answer: its steps (chosen token + top-k alternatives) and the served price."""

    text: str
    price: float | None
    steps: list = field(default_factory=list)


def generate_answers(model, spec, prompts: Sequence[str], batch_size: int = 16) -> list[Answer]:
    """A greedy generation per prompt allowed only the spec's answer tokens, priced by the spec.
    Batched with left padding, under no_grad, in eval mode."""
    import torch

    from app.model.decoding import steps_from_scores

    tokenizer = spec.tokenizer
    allowed = spec.answer_token_ids
    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers: list[Answer] = []
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                batch = tokenizer(list(prompts[start : start + batch_size]), return_tensors="pt", padding=True)
                batch = {k: v.to(model.device) for k, v in batch.items()}
                out = model.generate(
                    **batch, max_new_tokens=spec.max_tokens, do_sample=False, output_scores=True,
                    return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id,
                    prefix_allowed_tokens_fn=lambda *_: allowed,
                )
                rows = steps_from_scores(out.scores, out.sequences, batch["input_ids"].shape[1], tokenizer, top_k=spec.top_logprobs)
                for steps in rows:
                    try:
                        estimate = spec.estimate(steps)
                        answers.append(Answer(text=estimate.text, price=estimate.price, steps=steps))
                    except NoPriceError:
                        answers.append(Answer(text="".join(s.chosen for s in steps), price=None, steps=steps))
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return answers


def decoder_name(point: str) -> str:
    return f"app.model.decoding:{point}"


def validate(model, spec, items: Sequence[Item], data: str | None = None, batch_size: int = 16) -> ValidationScores:
    """Score the model on items with the served point rule (spec.point_rule); the other point
    rules of the same generations are recorded beside it (`by_point`). No readable price counts as $0."""
    from app.model.decoding import estimate_from_steps
    from app.evaluation import score

    if spec.tokenizer.pad_token is None:
        spec.tokenizer.pad_token = spec.tokenizer.eos_token
    answers = generate_answers(model, spec, spec.item_prompts([i.text for i in items], strict=True), batch_size=batch_size)
    truths = [i.price for i in items]
    by_point = {}
    for other in POINTS:
        guesses = []
        for answer in answers:
            try:
                guesses.append(estimate_from_steps(answer.steps, spec.interval_level, family=spec.family, point=other).price)
            except NoPriceError:
                guesses.append(0.0)
        s = score(truths, guesses)
        by_point[other] = {"mean_error": round(s.mean_error, 2), "rmsle": round(s.rmsle, 4), "hit_rate": round(s.hit_rate, 4),
                           "distinct": len({round(g) for g in guesses})}
    guesses = [a.price if a.price is not None else 0.0 for a in answers]
    scores = score(truths, guesses)
    return ValidationScores(
        n=len(items), mean_error=round(scores.mean_error, 4), rmsle=round(scores.rmsle, 4),
        hit_rate=round(scores.hit_rate, 4), data=data, decoding=decoder_name(spec.point_rule),
        unparsed=sum(1 for a in answers if a.price is None), by_point=by_point, compute=compute_of(model, spec),
    )


def compute_of(model, spec) -> dict:
    """Where the scores were computed: the device, the model's dtype and the CPU (app.model.hardware)."""
    from app.model.hardware import this_cpu

    dtype = str(getattr(model, "dtype", "")).removeprefix("torch.") or None
    device = str(getattr(model, "device", "cpu")).split(":")[0]
    return {"device": device, "dtype": dtype, "cpu": this_cpu().describe()}
