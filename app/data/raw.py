"""Reading raw Amazon-Reviews-2023 metadata rows: local JSONL (optionally gzipped) or the hub.

Raw rows carry title, description (list), features (list), details (dict or JSON string),
price (float, "None" or null), main_category. The category of a row is the dataset's category
(the config name, e.g. Appliances), taken from the file name `meta_<Category>.jsonl` when the
caller gives none, else the row's main_category.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HUB_DATASET = "McAuley-Lab/Amazon-Reviews-2023"
_META_NAME = re.compile(r"^meta_(.+?)\.jsonl(?:\.gz)?$")


class RawSourceError(RuntimeError):
    """A raw source that cannot be read at all (missing file, hub unreachable)."""


@dataclass
class RawRow:
    source: str  # file or hub config
    line: int
    category: str | None
    row: dict | None  # None: the line was not a JSON object
    error: str | None = None


def category_from_path(path: Path) -> str | None:
    match = _META_NAME.match(path.name)
    return match.group(1) if match else None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def iter_local(path: Path | str, category: str | None = None) -> Iterator[RawRow]:
    path = Path(path)
    if not path.is_file():
        raise RawSourceError(f"raw metadata file not found: {path}")
    category = category or category_from_path(path)
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                yield RawRow(str(path), number, category, None, f"malformed JSON ({e})")
                continue
            if isinstance(row, dict):
                yield RawRow(str(path), number, category or row.get("main_category"), row)
            else:
                yield RawRow(str(path), number, category, None, "not a JSON object")


def iter_hub(category: str, limit: int | None = None) -> Iterator[RawRow]:
    """Stream `raw/meta_categories/meta_<category>.jsonl` of the hub dataset with HF datasets."""
    import os

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise RawSourceError("the hub is off (HF_HUB_OFFLINE=1): pass local raw files instead, or unset it")
    try:
        from datasets import load_dataset

        data_files = f"hf://datasets/{HUB_DATASET}/raw/meta_categories/meta_{category}.jsonl"
        stream = load_dataset("json", data_files=data_files, split="train", streaming=True)
    except Exception as e:  # the hub raises many kinds; the user needs the one message
        raise RawSourceError(f"cannot read {HUB_DATASET} meta_{category} from the hub: {e}") from None
    for number, row in enumerate(stream, start=1):
        if limit is not None and number > limit:
            break
        details = row.get("details")
        if isinstance(details, dict):  # streamed structs carry every key seen; drop the empty ones
            row["details"] = {k: v for k, v in details.items() if v is not None}
        yield RawRow(f"hub:{category}", number, category, row)
