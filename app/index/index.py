"""A loaded index version: validated on load, searched by text or by vector."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from app.index import ann
from app.index.ann import AnnParams
from app.index.embedders import Embedder, document, get_embedder
from app.index.minilm import text_key
from app.index.manifest import (
    ANN_FILE, ITEMS_FILE, MANIFEST, DataFile, IndexFolderError, IndexManifest, check_files, file_entry, resolve,
)
from app.model.items import Item
from app.runtime.atomic import atomic_write_text

MAX_K = 1000  # the library's bound; the API allows at most 20


class Comparable(BaseModel):
    """One indexed item similar to a query: its title, its price, and the cosine similarity."""

    title: str
    price: float
    similarity: float


@dataclass(frozen=True)
class _Row:
    title: str
    price: float
    key: str


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


class Index:
    def __init__(self, folder: Path | None, manifest: IndexManifest, ann_index, rows: list[_Row], embedder: Embedder):
        self.folder, self.manifest, self.ann, self.rows, self.embedder = folder, manifest, ann_index, rows, embedder
        self.prices = np.array([r.price for r in rows], dtype=np.float64)

    @property
    def version(self) -> str:
        return self.manifest.version

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_items(cls, items: Sequence[Item], embedder: Embedder, params: AnnParams = AnnParams(),
                   version: str = "in-memory", data: Sequence[DataFile] = (), progress: bool = False) -> Index:
        """Embed the items (title and text) and build the ANN index in memory."""
        if not items:
            raise ValueError("an index needs at least one priced item")
        started = time.perf_counter()
        texts = [document(i) for i in items]
        vectors = embedder.encode(texts, progress=progress)
        if vectors.shape != (len(items), embedder.dim):
            raise ValueError(f"embedder {embedder.name} gave shape {vectors.shape}, expected ({len(items)}, {embedder.dim})")
        rows = [_Row(title=i.title, price=i.price, key=text_key(t)) for i, t in zip(items, texts, strict=True)]
        manifest = IndexManifest(
            version=version, embedder=embedder.name, dim=embedder.dim, count=len(items), ann=params,
            library=ann.library_version(), data=list(data), files={},
            build_seconds=round(time.perf_counter() - started, 3), command=" ".join(["pricer", *sys.argv[1:]]),
        )
        return cls(None, manifest, ann.build(vectors, params), rows, embedder)

    def write(self, folder: Path) -> None:
        """The ANN file, the items, and the manifest last (with each file's size and hash)."""
        folder = Path(folder)
        ann.write(self.ann, folder / ANN_FILE)
        lines = (json.dumps({"title": r.title, "price": r.price, "key": r.key}) for r in self.rows)
        (folder / ITEMS_FILE).write_text("".join(line + "\n" for line in lines))
        files = {name: file_entry(folder / name) for name in (ANN_FILE, ITEMS_FILE)}
        self.manifest = self.manifest.model_copy(update={"files": files})
        atomic_write_text(folder / MANIFEST, self.manifest.model_dump_json(indent=2) + "\n")  # last
        self.folder = folder

    @classmethod
    def load(cls, path: Path | str, embedder: Embedder | None = None, verify: bool = True) -> Index:
        """A version folder, or the newest version under a root. Refuses a folder whose manifest is
        missing or invalid, whose files are missing or differ from the manifest (verify), or whose
        embedder differs from the one given."""
        folder = resolve(Path(path))
        manifest = IndexManifest.read(folder)
        if verify:
            check_files(folder, manifest)
        embedder = embedder or get_embedder(manifest.embedder)
        if embedder.name != manifest.embedder:
            raise IndexFolderError(f"index {folder} was built with embedder {manifest.embedder!r}, not {embedder.name!r}")
        if embedder.dim != manifest.dim:
            raise IndexFolderError(f"index {folder} holds {manifest.dim}-d vectors, embedder {embedder.name} gives {embedder.dim}-d")
        try:
            index = ann.read(folder / ANN_FILE, manifest.ann)
            rows = [_Row(**json.loads(line)) for line in (folder / ITEMS_FILE).read_text().splitlines()]
        except (RuntimeError, ValueError, TypeError) as e:
            raise IndexFolderError(f"index {folder} cannot be read: {e}") from None
        if index.ntotal != manifest.count or len(rows) != manifest.count or index.d != manifest.dim:
            raise IndexFolderError(
                f"index {folder}: manifest says {manifest.count} items of dim {manifest.dim}, files hold "
                f"{index.ntotal} vectors of dim {index.d} and {len(rows)} items; rebuild it"
            )
        return cls(folder, manifest, index, rows, embedder)

    def search_vectors(
        self, vectors: np.ndarray, k: int, exclude: Sequence[str | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each (len(vectors), min(k, len(self))); `exclude`: per query, a text
        key (app.index.minilm.text_key) whose items are never returned. Slots with no neighbour
        (possible only with exclusions) hold id -1 and similarity nan."""
        k = min(check_k(k), len(self))
        if exclude is None:
            return ann.search(self.ann, vectors, k)
        sims = np.full((len(vectors), k), np.nan, dtype=np.float32)
        ids = np.full((len(vectors), k), -1, dtype=np.int64)
        fetch = k + 4
        pending = list(range(len(vectors)))
        while pending:
            got_sims, got_ids = ann.search(self.ann, vectors[pending], fetch)
            retry = []
            for row, q in enumerate(pending):
                keep = [(s, i) for s, i in zip(got_sims[row], got_ids[row], strict=True)
                        if i >= 0 and self.rows[i].key != exclude[q]][:k]
                if len(keep) < k and fetch < len(self):
                    retry.append(q)
                    continue
                for slot, (s, i) in enumerate(keep):
                    sims[q, slot], ids[q, slot] = s, i
            pending, fetch = retry, min(len(self), fetch * 4)
        return sims, ids

    def search(self, texts: Sequence[str], k: int, exclude: bool = False, cache: bool = True) -> list[list[Comparable]]:
        """The k most similar indexed items for each text, most similar first. `exclude`: never
        return an item whose text is exactly the query's (an item does not retrieve itself)."""
        check_k(k)
        if not texts:
            return []
        vectors = self.embedder.encode(list(texts), cache=cache)
        keys = [text_key(t) for t in texts] if exclude else None
        sims, ids = self.search_vectors(vectors, k, keys)
        return [
            [Comparable(title=self.rows[i].title, price=self.rows[i].price, similarity=round(float(s), 4))
             for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(sims, ids, strict=True)
        ]
