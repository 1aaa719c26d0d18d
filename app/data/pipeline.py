"""The curation run: read raw rows, apply the rules, balance, split, write items and a summary."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from app.data.curation import Curator, Dropped, MALFORMED, Rules, Summary, default_tokenizer_source, load_tokenizer
from app.data.raw import RawRow, iter_hub, iter_local
from app.data.sampling import Balance, balanced_sample, split
from app.model.items import Item
from app.runtime.atomic import atomic_write_text
from app.model.item_files import write_items


def curate_rows(rows: Iterable[RawRow], curator: Curator, summary: Summary) -> list[Item]:
    from tqdm import tqdm

    items = []
    for raw in tqdm(rows, desc="curate", unit="row", mininterval=1.0, disable=None):
        summary.read += 1
        where = f"{raw.source}:{raw.line}"
        if raw.row is None:
            summary.drop(MALFORMED, where)
            continue
        try:
            items.append(curator.curate(raw.row, raw.category))
        except Dropped as d:
            summary.drop(d.reason, where)
    summary.kept = len(items)
    return items


def curate(raw_files: Sequence[Path], out: Path, *, settings, category: str | None = None, hub_categories: Sequence[str] = (),
           hub_limit: int | None = None, val: float = 0.05, test: float = 0.05, slot_cap: int = 1200,
           keep_all_from: float = 240.0, size: int | None = None, seed: int = 42, tokenizer=None) -> dict:
    """Curate, balance and split; write out/{train,val,test}.jsonl and out/summary.json. Returns the summary."""
    rules = Rules.from_settings(settings)
    for path in raw_files:  # fail before any work on a missing file
        if not Path(path).is_file():
            raise FileNotFoundError(f"raw metadata file not found: {path}")
    tokenizer = tokenizer or load_tokenizer(default_tokenizer_source(settings))
    sources = [iter_local(p, category) for p in raw_files] + [iter_hub(c, hub_limit) for c in hub_categories]
    summary = Summary()
    items = curate_rows(itertools.chain.from_iterable(sources), Curator(tokenizer, rules), summary)
    if not items:
        raise ValueError(f"no row passed curation: {json.dumps(summary.to_dict())}")
    sample = balanced_sample(items, Balance(slot_cap, keep_all_from, size), seed=seed)
    splits = split(sample, val, test, seed=seed)
    out = Path(out)
    for name, part in splits.items():
        write_items(out / f"{name}.jsonl", part)
    result = {**summary.to_dict(), "sampled": len(sample), "splits": {name: len(part) for name, part in splits.items()},
              "rules": {"min_tokens": rules.min_tokens, "max_tokens": rules.max_tokens, "min_chars": rules.min_chars,
                        "price": [rules.min_price, rules.max_price]}, "seed": seed}
    atomic_write_text(out / "summary.json", json.dumps(result, indent=2) + "\n")
    return result
