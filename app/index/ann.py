"""The ANN library boundary (FAISS): build, search, save and load an inner-product index over unit
vectors (inner product = cosine similarity). docs/retrieval.md says why FAISS and these defaults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class AnnParams(BaseModel):
    """How the ANN index is built and searched; recorded in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field("hnsw", pattern="^(hnsw|flat)$")  # flat: exact search (small sets, tests)
    m: int = Field(32, ge=4, le=128)  # HNSW links per node
    ef_construction: int = Field(200, ge=8)
    ef_search: int = Field(128, ge=8)


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - the retrieval extra is missing
        raise RuntimeError("the index needs faiss-cpu (pip install '.[retrieval]')") from None
    return faiss


def library_version() -> str:
    return f"faiss-cpu {_faiss().__version__}"


def _as_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    return vectors


def new_index(dim: int, params: AnnParams):
    faiss = _faiss()
    if params.kind == "flat":
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    index.hnsw.efSearch = params.ef_search
    return index


def build(vectors: np.ndarray, params: AnnParams):
    vectors = _as_rows(vectors)
    index = new_index(vectors.shape[1], params)
    index.add(vectors)
    return index


def configure(index, params: AnnParams) -> None:
    """Search-time parameters are not all stored in the file: set them after a load."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = params.ef_search


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids), each (len(queries), k); ids of -1 where fewer than k exist."""
    queries = _as_rows(queries)
    k = min(k, index.ntotal)
    if k <= 0 or len(queries) == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    return index.search(queries, k)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force, the reference for recall."""
    return search(build(vectors, AnnParams(kind="flat")), queries, k)


def write(index, path: Path) -> None:
    _faiss().write_index(index, str(path))


def read(path: Path, params: AnnParams):
    index = _faiss().read_index(str(path))
    configure(index, params)
    return index


def vectors_of(index) -> np.ndarray:
    """The stored vectors (flat and HNSW-over-flat keep them exactly)."""
    faiss = _faiss()
    storage = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    return storage.reconstruct_n(0, index.ntotal)
