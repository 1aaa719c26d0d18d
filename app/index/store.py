"""Building a versioned index folder under a root (models/index/<version>/).

A version is built in a hidden temporary folder beside the others and renamed into place with
its manifest already inside, so a reader never sees half of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from app.index.ann import AnnParams
from app.index.embedders import Embedder
from app.index.index import Index
from app.index.manifest import DataFile
from app.model.items import Item
from app.runtime.atomic import building


def new_version(count: int) -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + f"-n{count:06d}"


def build_index(
    items: Sequence[Item],
    root: Path,
    embedder: Embedder,
    params: AnnParams = AnnParams(),
    data: Sequence[DataFile] = (),
    progress: bool = False,
) -> Path:
    """Embed `items`, build the ANN index and write a new version folder under `root`; returns it."""
    root = Path(root)
    version = new_version(len(items))
    index = Index.from_items(items, embedder, params, version=version, data=data, progress=progress)
    target, n = root / version, 1
    while target.exists():  # two builds of the same size in the same second
        n += 1
        target = root / f"{version}-{n}"
    with building(target) as tmp:  # a hidden folder beside it, renamed into place when whole
        index.write(tmp)  # the manifest last
    return target


def build_from_files(paths: Sequence[Path], root: Path, embedder: Embedder, params: AnnParams = AnnParams(),
                     progress: bool = False) -> Path:
    """Index the items of these files (each recorded by path, sha256 and count, so the index is found by
    content later) as a new version under `root`; returns it."""
    from app.index.manifest import sha256_file
    from app.model.item_files import load_items

    items, files = [], []
    for path in paths:
        loaded = load_items(path)
        items.extend(loaded)
        files.append(DataFile(path=str(path), sha256=sha256_file(path), items=len(loaded)))
    return build_index(items, root, embedder, params, files, progress=progress)

