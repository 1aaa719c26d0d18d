"""Comparables for the service layer: the k most similar indexed items behind an estimate.

The API calls `index_from_settings(settings)` once at start-up (None, with the reason logged, when
no index is there) and `ComparablesService.lookup(text, k)` per request (`alookup` from async
code: the embedding runs in a worker thread). Wiring: docs/retrieval.md.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.index.embedders import UnknownEmbedderError
from app.index.index import Comparable, Index
from app.index.manifest import IndexFolderError

log = logging.getLogger("pricer.index")

API_MAX_K = 20  # what POST /v1/estimate accepts


class ComparablesUnavailableError(RuntimeError):
    """A comparables request on a service that has no index (a client-visible condition, not a 5xx)."""


class ComparablesService:
    def __init__(self, index: Index):
        self.index = index

    def describe(self) -> dict:
        m = self.index.manifest
        return {"version": m.version, "items": m.count, "embedder": m.embedder, "dim": m.dim, "path": str(self.index.folder)}

    def lookup(self, text: str, k: int) -> list[Comparable]:
        """The k (1..20) most similar indexed items, most similar first (fewer if the index is smaller)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= API_MAX_K:
            raise ValueError(f"comparables must be from 1 to {API_MAX_K}, got {k!r}")
        return self.index.search([text], k, cache=False)[0]

    def lookup_many(self, texts: list[str], k: int) -> list[list[Comparable]]:
        """One embedding batch for a batch request."""
        if not 1 <= k <= API_MAX_K:
            raise ValueError(f"comparables must be from 1 to {API_MAX_K}, got {k!r}")
        return self.index.search(texts, k, cache=False) if texts else []

    async def alookup(self, text: str, k: int) -> list[Comparable]:
        return await asyncio.to_thread(self.lookup, text, k)

    async def alookup_many(self, texts: list[str], k: int) -> list[list[Comparable]]:
        return await asyncio.to_thread(self.lookup_many, texts, k)


def index_root(settings) -> Path:
    """PRICER_INDEX_DIR, else <models_dir>/index."""
    return Path(settings.index_dir) if getattr(settings, "index_dir", None) else Path(settings.models_dir) / "index"


def index_from_settings(settings) -> ComparablesService | None:
    """The newest index version under the configured folder, or None (logged: why, and how to build
    one). Never raises for a missing or broken index: the service runs without comparables."""
    root = index_root(settings)
    try:
        index = Index.load(root)
    except (IndexFolderError, UnknownEmbedderError) as e:
        log.warning("comparables disabled: %s", e)
        return None
    except (RuntimeError, ImportError, OSError) as e:  # faiss or the embedder not installed, unreadable files
        log.warning("comparables disabled: index at %s cannot be loaded: %s", root, e)
        return None
    service = ComparablesService(index)
    log.info("comparables enabled: index %s", service.describe())
    return service


def attach_index(spec, settings=None, comparables: ComparablesService | None = None, required: bool = False):
    """The one way a serving spec gets the comparables index, for the prompts of adapters trained
    with comparables: `comparables` when the caller already loaded it (the serving stack), else the
    configured one from `settings`. Returns the attached Index (None: none attached; `required`:
    raise ComparablesUnavailableError saying why instead, as training does: it cannot build its
    prompts without one)."""
    if spec is None:
        return None
    if spec.index is not None:
        return spec.index
    if comparables is None and settings is not None:
        if required:
            try:
                comparables = ComparablesService(Index.load(index_root(settings)))
            except Exception as e:  # noqa: BLE001 - any failure to load means no prompts can be built
                raise ComparablesUnavailableError(f"the comparables index cannot be loaded: {e} (build it with `make index`)") from e
        else:
            comparables = index_from_settings(settings)
    if comparables is None:
        return None
    spec.use_index(comparables.index)
    return comparables.index
