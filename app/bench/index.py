"""`pricer bench index`: recall@k against exact search, single-query latency p50/p95 and memory, on a
built index and on a synthetic one (the measurements: app/bench/ann.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from app.cli_options import fail
from pydantic import BaseModel, Field


class Options(BaseModel):
    index: Path = Field(Path("models/index"), description="An index version, or a root (its newest version); a missing one is skipped.")
    queries: Path | None = Field(None, description="Items JSONL whose texts are the queries (e.g. val.jsonl).")
    synthetic: int = Field(1_000_000, description="Items in the synthetic index (random unit vectors); 0 skips it.")
    max_build_s: float = Field(420.0, description="Stop adding synthetic vectors after this many seconds.")
    k: int = Field(5, ge=1, le=100)
    n_queries: int = Field(250, ge=1)
    ef: list[int] = Field([32, 64, 128, 256], description="efSearch values to measure; repeat.")
    m: int = Field(16, description="Synthetic index: HNSW links per node.")
    ef_construction: int = Field(40, description="Synthetic index: HNSW build beam width.")
    like_index: bool = Field(False, description="Synthetic vectors drawn like the index's (its mean and covariance), not isotropic.")
    out: Path | None = Field(None, description="Write the JSON result here too.")


def bench(o: Options) -> None:
    """Recall@k against exact search, single-query latency p50/p95 and memory. Heavy: run it alone."""
    from app.bench.ann import VectorSource, bench_built, bench_synthetic, built_vectors
    from app.index.ann import AnnParams
    from app.index.embedders import document
    from app.index.manifest import IndexFolderError
    from app.model.item_files import ItemsFileError, load_items

    result: dict = {}
    try:
        if o.queries is not None:
            texts = [document(i) for i in load_items(o.queries, limit=o.n_queries)]
            result["built"] = bench_built(o.index, texts, o.k, o.ef)
            typer.echo(json.dumps({"built": result["built"]}), err=True)
        if o.synthetic:
            like = built_vectors(o.index) if o.like_index else None
            source = VectorSource(like.shape[1] if like is not None else 384, like)
            params = AnnParams(m=o.m, ef_construction=o.ef_construction)
            result["synthetic"] = bench_synthetic(o.synthetic, source, params, o.k, o.ef, min(o.n_queries, 200), o.max_build_s)
    except (FileNotFoundError, ItemsFileError, IndexFolderError, ValueError) as e:
        fail(e)
    if o.out:
        o.out.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(json.dumps(result))
