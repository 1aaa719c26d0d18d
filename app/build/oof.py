"""A bundle's out-of-fold answers on its held-out (stacking) items: the file promotion compares on.

One JSON object a line, in the items' order: {"item": item_key, "guess", "low", "high"} (dollars),
each row priced by the full member set's stack fitted, alpha, weights and conformal offsets
included, on the other folds only (nested cross-fitting, app.ensemble.crossfit). The rows carry
no title and no truth: bundles are committed to git and the data never is; the item key is a
hash of the item's text and price, and the truth comes back from the items at comparison time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from app.model.items import Item
from app.runtime.atomic import atomic_write_text

OOF_FILE = "oof.jsonl"  # inside a bundle folder
FIELDS = ("item", "guess", "low", "high")


class OofError(ValueError):
    """Answers that cannot make out-of-fold rows, or a rows file that is not one."""


def oof_rows(answers: Mapping[str, Sequence[float]], items: Sequence[Item], level: float, folds: int,
             seed: int, rows=None, truths: Sequence[float] | None = None) -> list[dict]:
    """Per held-out item, the full member set's nested out-of-fold point and interval (dollars).
    With `rows` (app.ensemble.rows.StackRows), `answers` and `truths` are on all the stacking rows,
    the held-out items first (then their title-only copies), and the items' rows are the first ones."""
    from app.ensemble.fit import out_of_fold
    from app.evaluation.report import item_key

    if not answers:
        raise OofError("no members' answers")
    truths = [i.price for i in items] if truths is None else list(truths)
    n = len(items) if rows is None else len(rows)
    short = {name: len(prices) for name, prices in answers.items() if len(prices) != n}
    if short or len(truths) != n:
        raise OofError(f"answers on other items than the {n} held-out ones: {short or {'truths': len(truths)}}")
    point, low, high = out_of_fold(answers, truths, list(answers), level, folds, seed, rows)
    return [{"item": item_key(item), "guess": g, "low": lo, "high": hi}
            for item, g, lo, hi in zip(items, point[:len(items)], low[:len(items)], high[:len(items)], strict=True)]


def _check(row: dict, where: str) -> dict:
    if not isinstance(row, dict) or set(row) != set(FIELDS):
        keys = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise OofError(f"{where}: an out-of-fold row has exactly {', '.join(FIELDS)} (got {keys})")
    if not isinstance(row["item"], str) or not all(isinstance(row[k], (int, float)) for k in FIELDS[1:]):
        raise OofError(f"{where}: item must be a key, guess/low/high numbers")
    return row


def write_oof(path: Path | str, rows: Sequence[dict]) -> int:
    """Write the rows atomically; refuses any other field (a title or a truth must never be written)."""
    rows = [_check(row, str(path)) for row in rows]
    atomic_write_text(path, "".join(json.dumps({k: row[k] for k in FIELDS}) + "\n" for row in rows))
    return len(rows)


def read_oof(path: Path | str) -> list[dict]:
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise OofError(f"{path}: {e}") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(_check(json.loads(line), f"{path}:{number}"))
            except json.JSONDecodeError as e:
                raise OofError(f"{path}:{number}: {e}") from None
    return rows


def recorded_oof(bundle_folder: Path | str, items: Sequence[Item]) -> list[dict] | None:
    """The bundle's recorded rows when they are on exactly these items (same keys, any order), else
    None: rows fitted on other items had other folds, and must be computed again."""
    from app.evaluation.report import item_key

    path = Path(bundle_folder) / OOF_FILE
    if not path.is_file():
        return None
    rows = read_oof(path)
    return rows if sorted(r["item"] for r in rows) == sorted(item_key(i) for i in items) else None
