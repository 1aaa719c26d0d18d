"""Items files (JSONL, one item a line): reading with the file and line of every bad row, and
writing atomically."""

from __future__ import annotations

import json
from itertools import islice
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from app.model.items import Item
from app.runtime.atomic import atomic_write_text


class ItemsFileError(ValueError):
    """A row of an items file that is not a valid item. The message names the file and line."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors())


@dataclass
class SkippedRow:
    line: int
    reason: str


def iter_items(path: Path | str, skipped: list[SkippedRow] | None = None) -> Iterator[Item]:
    """Yield the items of a JSONL file. A bad row raises ItemsFileError naming the file and line,
    unless `skipped` is given: then the row is recorded there and reading goes on."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"items file not found: {path}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
                if not isinstance(row, dict):
                    raise ValueError(f"expected a JSON object, got {type(row).__name__}")
                item = Item.model_validate(row)
            except UnicodeDecodeError as e:
                reason = f"not UTF-8 ({e.reason} at byte {e.start})"
            except json.JSONDecodeError as e:
                reason = f"malformed JSON ({e.msg} at column {e.colno})"
            except ValidationError as e:
                reason = _describe(e)
            except ValueError as e:
                reason = str(e)
            else:
                yield item
                continue
            if skipped is None:
                raise ItemsFileError(path, number, reason)
            skipped.append(SkippedRow(number, reason))


def load_items(path: Path | str, limit: int | None = None) -> list[Item]:
    """All items of a JSONL file (the first `limit`), failing on the first bad row."""
    if limit is not None and limit <= 0:
        return []
    return list(islice(iter_items(path), limit))  # rows past the limit are not read, so cannot fail


def write_items(path: Path | str, items: Iterable[Item]) -> int:
    """Write items as JSONL, atomically. Returns how many were written."""
    lines = [item.model_dump_json(exclude_none=False) for item in items]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
