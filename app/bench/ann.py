"""The measurements of `pricer bench index`: recall@k of the ANN search against exact search,
single-query latency and memory, on a built index (real items, real queries) and on a synthetic
index of random unit vectors."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.index import ann
from app.index.ann import AnnParams


def rss_bytes() -> int:
    """This process's resident memory now (Linux), 0 where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def index_bytes(index) -> int:
    """Size of the index in FAISS's file format, counted without writing it anywhere."""
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k that the ANN search also returned."""
    k = exact.shape[1]
    return float(np.mean([len(set(f[f >= 0]) & set(e)) / k for f, e in zip(found, exact, strict=True)]))


def _ms_percentiles(seconds: Sequence[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def single_query_latency(index, queries: np.ndarray, k: int) -> dict:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - started)
    return _ms_percentiles(times)


def measure(index, vectors_exact, queries: np.ndarray, k: int, ef_values: Sequence[int],
            planted: np.ndarray | None = None) -> list[dict]:
    """Recall@k and latency at each efSearch; `vectors_exact` is an exact (flat) index of the same
    vectors; `planted`: each query's source id, reported as the share found first."""
    _, exact_ids = vectors_exact.search(queries, k)
    rows = []
    for ef in ef_values:
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = ef
        _, ids = index.search(queries, k)
        row = {"ef_search": ef, f"recall_at_{k}": round(recall_at(ids, exact_ids), 4)}
        if planted is not None:  # and how often exact search puts it first (noise can move another item closer)
            row["planted_found_first"] = round(float(np.mean(ids[:, 0] == planted)), 4)
            row["planted_first_exact"] = round(float(np.mean(exact_ids[:, 0] == planted)), 4)
        rows.append({**row, **single_query_latency(index, queries, k)})
    return rows


def bench_built(folder: Path, query_texts: Sequence[str], k: int, ef_values: Sequence[int]) -> dict:
    """The real index: its own vectors, queries embedded with its embedder."""
    from app.index.index import Index
    from app.index.service import ComparablesService

    from app.index.embedders import get_embedder
    from app.index.manifest import IndexManifest, resolve

    embedder = get_embedder(IndexManifest.read(resolve(folder)).embedder)
    with_embedder = rss_bytes() if embedder.dim else 0  # the model is loaded before the index is measured
    started = time.perf_counter()
    index = Index.load(folder, embedder=embedder)
    load_s = time.perf_counter() - started
    loaded = rss_bytes()
    queries = index.embedder.encode(list(query_texts), cache=False)
    exact = ann.build(ann.vectors_of(index.ann), AnnParams(kind="flat"))
    rows = measure(index.ann, exact, queries, k, ef_values)
    ann.configure(index.ann, index.manifest.ann)
    service = ComparablesService(index)
    lookup_times = []
    for text in query_texts[:100]:
        started = time.perf_counter()
        service.lookup(text, k)
        lookup_times.append(time.perf_counter() - started)
    return {
        "index": str(index.folder), "items": len(index), "dim": index.manifest.dim, "ann": index.manifest.ann.model_dump(),
        "queries": len(query_texts), "k": k, "by_ef_search": rows,
        "exact_search": single_query_latency(exact, queries, k),
        "lookup_with_embedding": _ms_percentiles(lookup_times),
        "index_file_bytes": (index.folder / "ann.faiss").stat().st_size, "index_bytes": index_bytes(index.ann),
        "load_seconds": round(load_s, 3), "rss_with_embedder": with_embedder, "rss_after_load": loaded,
        "rss_added_by_index_load": loaded - with_embedder, "rss_at_end": rss_bytes(),
    }


def built_vectors(folder: Path) -> np.ndarray:
    """The vectors stored in an index version (or the newest under a root)."""
    from app.index.manifest import ANN_FILE, IndexManifest, resolve

    folder = resolve(Path(folder))
    return ann.vectors_of(ann.read(folder / ANN_FILE, IndexManifest.read(folder).ann))


class VectorSource:
    """Random unit vectors: isotropic (`like=None`: no structure at all, the worst case for an ANN
    graph), or drawn from a Gaussian with the mean and covariance of real vectors `like` (the built
    index's), so that the synthetic set is as anisotropic as real embeddings."""

    def __init__(self, dim: int, like: np.ndarray | None = None, seed: int = 0):
        self.dim, self.rng = dim, np.random.default_rng(seed)
        self.mean = self.factor = None
        if like is not None:
            like = np.asarray(like, dtype=np.float64)
            self.mean = like.mean(axis=0)
            cov = np.cov(like, rowvar=False) + 1e-6 * np.eye(like.shape[1])
            self.factor = np.linalg.cholesky(cov).T.astype(np.float32)

    @property
    def kind(self) -> str:
        return "isotropic" if self.factor is None else "gaussian-like-index"

    def draw(self, n: int) -> np.ndarray:
        x = self.rng.standard_normal((n, self.dim), dtype=np.float32)
        if self.factor is not None:
            x = x @ self.factor + self.mean.astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return np.ascontiguousarray(x, dtype=np.float32)


def bench_synthetic(n: int, source: VectorSource, params: AnnParams, k: int, ef_values: Sequence[int], queries: int,
                    max_build_s: float, chunk: int = 50_000) -> dict:
    """`n` vectors from `source`, added in chunks until `n` or `max_build_s`; queries are fresh
    vectors from the same source and, separately, perturbed copies of indexed vectors (a near
    neighbour exists, as for a real product: is it found first?)."""
    dim = source.dim
    before = rss_bytes()
    index, exact = ann.new_index(dim, params), ann.new_index(dim, AnnParams(kind="flat"))
    kept = None
    started = time.perf_counter()
    while index.ntotal < n and time.perf_counter() - started < max_build_s:
        block = source.draw(min(chunk, n - index.ntotal))
        if kept is None:
            kept = block[:queries].copy()
        index.add(block)
        exact.add(block)
    build_s = time.perf_counter() - started
    ann_rss = rss_bytes() - before
    fresh_q = source.draw(queries)
    near_q = kept + source.rng.standard_normal(kept.shape, dtype=np.float32) * (0.5 / np.sqrt(dim))
    near_q /= np.linalg.norm(near_q, axis=1, keepdims=True)
    return {
        "requested": n, "built": int(index.ntotal), "dim": dim, "vectors": source.kind, "ann": params.model_dump(),
        "k": k, "build_seconds": round(build_s, 1), "build_bounded_at_s": max_build_s,
        "vectors_per_s": round(index.ntotal / build_s), "queries": len(kept),
        "fresh_queries": measure(index, exact, fresh_q, k, ef_values),
        "near_duplicate_queries": measure(index, exact, near_q, k, ef_values, planted=np.arange(len(kept))),
        "exact_search": single_query_latency(exact, fresh_q[:50], k),
        "index_bytes": index_bytes(index), "rss_ann_plus_exact": ann_rss,
    }
