"""Training examples: items as prompt/completion pairs, built by the serving spec (app.model.spec), so
the template the model learns is the one it is served with.

The description is cut with the spec's cutter so that prompt + completion fit in `max_length`: the
trainer would otherwise cut from the end, which is where the price is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from app.model.items import Item
from app.model.item_files import load_items


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
        out += [item] * next((n for prefix, n in copies_by_origin.items() if (item.origin or "").startswith(prefix)), 1)
    return out


def load_training_items(paths: Sequence[Path]) -> list[Item]:
    items: list[Item] = []
    for path in paths:
        items.extend(load_items(path))
    if not items:
        raise ValueError(f"no training items in {', '.join(map(str, paths))}")
    return items


def build_dataset(items: Sequence[Item], spec, max_length: int, copies_by_origin: dict[str, int] | None = None):
    """An HF Dataset of prompt/completion pairs (TRL computes the loss on the completion only)."""
    from datasets import Dataset

    chosen = oversampled(items, copies_by_origin or {})
    contexts = _contexts(spec, chosen)
    return Dataset.from_list([spec.training_example(item, max_length, contexts.get(item.text, "")) for item in chosen])


def _contexts(spec, items: Sequence[Item]) -> dict[str, str]:
    """Each distinct text's comparables block, retrieved once (strict: a retrieval-augmented run
    without an index is an error, not a run that learns the other prompt)."""
    if spec.comparables == 0:
        return {}
    from tqdm import tqdm

    texts = list(dict.fromkeys(item.text for item in items))
    out: dict[str, str] = {}
    for start in tqdm(range(0, len(texts), 256), desc="comparables", unit_scale=256):
        batch = texts[start : start + 256]
        out.update(zip(batch, spec.contexts(batch, strict=True), strict=True))
    return out
