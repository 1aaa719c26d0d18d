"""The benchmark's own parts: recall, the synthetic vector sources, a small synthetic run."""

from __future__ import annotations

import numpy as np

from app.bench.ann import VectorSource, bench_synthetic, recall_at
from app.index.ann import AnnParams


def test_recall_counts_the_exact_top_k_found():
    exact = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    found = np.array([[5, 4, 3, 2, 1], [6, 7, -1, 0, 11]])
    assert recall_at(found, exact) == (1.0 + 0.4) / 2


def test_sources_draw_unit_vectors_and_like_follows_the_real_spread():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((500, 16)) * np.r_[np.full(2, 5.0), np.full(14, 0.1)] + 3.0
    iso, like = VectorSource(16, seed=0), VectorSource(16, like=real, seed=0)
    a, b = iso.draw(1000), like.draw(1000)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5) and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert (iso.kind, like.kind) == ("isotropic", "gaussian-like-index")
    # like-the-index vectors share the real ones' common direction; isotropic ones do not
    direction = real.mean(axis=0) / np.linalg.norm(real.mean(axis=0))
    assert float((b @ direction).mean()) > 0.5 > abs(float((a @ direction).mean())) + 0.4


def test_small_synthetic_run_reports_each_measure():
    out = bench_synthetic(3000, VectorSource(32, seed=2), AnnParams(m=16, ef_construction=40), 5, [16, 64], 50, 30.0)
    assert out["built"] == 3000 and out["queries"] == 50 and out["index_bytes"] > 3000 * 32 * 4
    near = out["near_duplicate_queries"]
    assert near[-1]["planted_found_first"] >= 0.9 and near[-1]["recall_at_5"] >= near[0]["recall_at_5"] - 0.05
    assert all(row["p95_ms"] >= row["p50_ms"] > 0 for row in out["fresh_queries"])
