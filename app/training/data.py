"""Training examples: items as prompt/completion pairs, built with the shared prompt builder.

The description is cut with the model's own tokenizer so that prompt + completion fit in
`max_length`: the trainer would otherwise cut from the end, which is where the price is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from app.items import Item, build_completion, build_prompt, load_items

# Room for the completion ("1234.00" is 7 digit/dot tokens in SmolLM2) and the end-of-text token.
COMPLETION_ROOM = 10


def data_hash(paths: Sequence[Path]) -> str:
    """sha256 over the training files' bytes, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def oversampled(items: Sequence[Item], copies_by_origin: dict[str, int]) -> list[Item]:
    """Each item repeated by the copies of the first origin prefix it matches (1 if none; 0 drops it)."""
    out: list[Item] = []
    for item in items:
        copies = 1
        for prefix, n in copies_by_origin.items():
            if (item.origin or "").startswith(prefix):
                copies = n
                break
        out.extend([item] * copies)
    return out


def fit_text(text: str, tokenizer, max_length: int) -> str:
    """`text` cut so that build_prompt(text) plus the completion fit in `max_length` tokens."""
    overhead = len(tokenizer(build_prompt(""), add_special_tokens=True)["input_ids"])
    budget = max(1, max_length - overhead - COMPLETION_ROOM)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text
    return tokenizer.decode(ids[:budget], skip_special_tokens=True)


def to_example(item: Item, tokenizer, max_length: int) -> dict[str, str]:
    return {"prompt": build_prompt(fit_text(item.text, tokenizer, max_length)), "completion": build_completion(item.price)}


def load_training_items(paths: Sequence[Path]) -> list[Item]:
    items: list[Item] = []
    for path in paths:
        items.extend(load_items(path))
    if not items:
        raise ValueError(f"no training items in {', '.join(map(str, paths))}")
    return items


def build_dataset(items: Sequence[Item], tokenizer, max_length: int, copies_by_origin: dict[str, int] | None = None):
    """An HF Dataset of prompt/completion pairs (TRL computes the loss on the completion only)."""
    from datasets import Dataset

    rows = [to_example(item, tokenizer, max_length) for item in oversampled(items, copies_by_origin or {})]
    return Dataset.from_list(rows)
