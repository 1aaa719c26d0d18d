"""External members other than the LLM, found on this machine at serving time.

frontier: a model behind an OpenAI-compatible API, given the k comparables in its prompt (the
course's RAG agent). Fitted from its answers on val (`pricer evaluate --estimator frontier --report`,
then `--member-report frontier=FILE`); served only where PRICER_FRONTIER_API_KEY is set, otherwise
listed missing with that reason and the stack for the other members answers.

    {"name": "frontier", "kind": "external", "estimator": "frontier", "endpoint": {"model": "gpt-4o-mini", "comparables": 5}}

knn: its neighbours are items' titles and prices, so the bundle never holds them. Its manifest row
names the index it was fitted with by CONTENT (embedder + the sha256 of the data files), not by a
version folder: the same data gives a matching index on any machine (`make index` builds one from
../shared/data). The service looks for it under PRICER_INDEX_DIR (default models/index), newest
first; none or none matching -> the member is left out with that reason.

    {"name": "knn", "kind": "external", "estimator": "knn", "params": {"k": 20, "rule": "mean",
     "temperature": 0.05}, "index": {"embedder": "minilm", "data_sha256": ["6916d3..."]}}
"""

from __future__ import annotations

from pathlib import Path

from app.ensemble.bundle import BundleError
from app.ensemble.members import FITTED_INDEX


def is_content_member(row: dict) -> bool:
    """An external member found by content (checked here, at serving time), not by a store path."""
    return row.get("kind") == "external" and isinstance(row.get("index"), dict)


def find_index(root: Path, want: dict) -> Path:
    """The newest index version under `root` (or `root` itself) built with `want`'s embedder from
    exactly `want`'s data files; BundleError saying what was looked at otherwise."""
    from app.index.manifest import find_built_from

    folder, passed = find_built_from(Path(root), want.get("embedder"), want.get("data_sha256") or [])
    if folder is not None:
        return folder
    looked = "; ".join(passed) if passed else "no index there"
    raise BundleError(f"no index under {root} built with embedder {want.get('embedder')} from the data this member was "
                      f"fitted on ({looked}); build one: `make index` or `pricer index build --data ...`")


def load_content_member(row: dict, settings, embedder=None):
    """The estimator for a content-addressed external member (knn), or BundleError with the reason."""
    from app.index.index import Index
    from app.index.service import index_root

    if row.get("estimator") != "knn":
        raise BundleError(f"member {row['name']!r}: external estimator {row.get('estimator')!r} is not one the service runs")
    from app.estimators.knn import KnnEstimator

    folder = find_index(index_root(settings), row["index"])
    return KnnEstimator(**(row.get("params") or {})).use_index(Index.load(folder, embedder=embedder))


def content_row(row: dict, saved: Path, data_files: list[Path]) -> tuple[dict, Path | None]:
    """At fit time: a saved knn member becomes a content-addressed external row (its index holds
    titles and prices, so it is not copied into the bundle); the data files are the ones it was
    fitted on (`ensemble fit --train`). Any other member: (row, saved) unchanged."""
    import json

    from app.index.manifest import sha256_file

    meta_file = Path(saved) / "estimator.json" if saved is not None else None
    if meta_file is None or not meta_file.is_file():
        return row, saved
    meta = json.loads(meta_file.read_text())
    if meta.get("name") != "knn":
        return row, saved
    if not data_files:
        raise BundleError(f"member {row['name']!r}: a knn member needs --train (the data its index is built from)")
    params = {key: meta[key] for key in ("k", "rule", "temperature") if key in meta}
    index = {"embedder": meta.get("embedder", "minilm"), "data_sha256": [sha256_file(Path(p)) for p in data_files]}
    return {**row, "kind": "external", "estimator": "knn", "params": params, "index": index,
            "fitted": FITTED_INDEX}, None


FRONTIER_MEMBER = "frontier"


def is_endpoint_member(row: dict) -> bool:
    """An external member that calls a configured API at serving time (the frontier model)."""
    return row.get("kind") == "external" and row.get("estimator") == FRONTIER_MEMBER


def endpoint_row(row: dict, settings) -> dict:
    """The fit-time row of a frontier member: what it was asked with (the model, k comparables)."""
    return row | {"estimator": FRONTIER_MEMBER,
                  "endpoint": {"model": settings.frontier_model, "comparables": settings.frontier_comparables}}


def load_endpoint_member(row: dict, settings):
    """The frontier estimator over the configured endpoint, asked as when fitted; BundleError when no
    endpoint is configured (the member is then left out of every answer, with that reason)."""
    from app.estimators.frontier import FrontierError, FrontierEstimator

    if settings.frontier_api_key is None:
        raise BundleError("no frontier endpoint configured (set PRICER_FRONTIER_API_KEY and PRICER_FRONTIER_BASE_URL)")
    endpoint = row.get("endpoint") or {}
    try:
        return FrontierEstimator.from_settings(
            settings, model=endpoint.get("model"), comparables=int(endpoint.get("comparables") or 0),
            retries=0, timeout=settings.member_timeout_s, require_index=True,
        )
    except FrontierError as e:
        raise BundleError(f"member {row['name']!r} was fitted with comparables in its prompts: {e}") from None
