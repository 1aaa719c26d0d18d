"""The active bundle's answers on the new build's held-out items, so both are compared on the same
items with the same folds and seed.

Each active member is identified by a fingerprint of what decides its answers:

    saved                 its files' sha256 (the manifest's `files`)
    knn (by content)      its index content (embedder, data files' sha256) and its parameters
    external, store ref   its ref and the sha256 of the ref's manifest (the LLM's adapter)
    external, no ref      its answers file's sha256 (a frontier endpoint, or a report without a ref)

A member whose fingerprint equals one of the new build's members takes the new build's answers
(`reuse`) instead of being run again: the LLM, the expensive one, is usually the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from app.model.items import Item

log = logging.getLogger("pricer.build")


class ActiveAnswersError(RuntimeError):
    """An active member whose answers cannot be computed here; the message says what is needed."""


def member_fingerprint(row: dict) -> str | None:
    """A manifest member row's fingerprint (sha256 of its identity), or None when nothing identifies it."""
    if row.get("kind") == "saved":
        identity = {"saved": row.get("files")}
    elif isinstance(row.get("index"), dict):
        identity = {"index": row["index"], "estimator": row.get("estimator"), "params": row.get("params") or {}}
    elif row.get("ref") and row.get("sha256"):
        identity = {"ref": row["ref"], "sha256": row["sha256"]}
    elif isinstance(row.get("report"), dict) and row["report"].get("sha256"):
        identity = {"report": row["report"]["sha256"], "endpoint": row.get("endpoint")}
    else:
        return None
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def bundle_fingerprints(bundle_folder: Path | str) -> dict[str, str]:
    """member name -> fingerprint for a bundle's members that have one (its manifest only)."""
    manifest = json.loads((Path(bundle_folder) / "manifest.json").read_text())
    prints = {row["name"]: member_fingerprint(row) for row in manifest["members"]}
    return {name: fp for name, fp in prints.items() if fp is not None}


def active_answers(bundle_folder: Path | str, items: Sequence[Item], settings,
                   reuse: Mapping[str, Sequence[float]], fingerprints: Mapping[str, str]) -> dict[str, list[float]]:
    """Each active member's answers on `items`, in the bundle's member order. `reuse`: the new
    build's answers by its member names; `fingerprints`: the new build's member name -> fingerprint.
    Saved members are checked against their hashes first (Bundle.load refuses a changed one)."""
    from app.ensemble.bundle import Bundle

    bundle = Bundle.load(bundle_folder)
    by_print = {fp: name for name, fp in fingerprints.items() if name in reuse}
    out: dict[str, list[float]] = {}
    for row in bundle.manifest["members"]:
        name, fp = row["name"], member_fingerprint(row)
        if fp is not None and fp in by_print:
            prices = [float(p) for p in reuse[by_print[fp]]]
            if len(prices) != len(items):
                raise ActiveAnswersError(f"member {name!r}: the new build's {by_print[fp]!r} answers hold "
                                         f"{len(prices)} prices for {len(items)} items")
            log.info("active member %s: the new build's %s answers (same fingerprint)", name, by_print[fp])
            out[name] = prices
        else:
            log.info("active member %s: computing its answers on %d items", name, len(items))
            out[name] = _compute(bundle, row, items, settings)
    return out


def active_oof(bundle_folder: Path | str, items: Sequence[Item], settings, reuse: Mapping[str, Sequence[float]],
               fingerprints: Mapping[str, str], level: float, folds: int, seed: int,
               reuse_titles: Mapping[str, Sequence[float]] | None = None) -> list[dict]:
    """The active bundle's out-of-fold rows on `items`: those it recorded when they are on exactly
    these items with these folds and seed, else computed (its members' answers, then `oof_rows`) as
    it was stacked: a bundle fitted with title rows and richness columns (its manifest's `richness`)
    is stacked with them again, its members also answering the items' titles (`reuse_titles`: the new
    build's answers on them, by its member names, reused like `reuse`)."""
    from app.build.oof import oof_rows, recorded_oof

    manifest = json.loads((Path(bundle_folder) / "manifest.json").read_text())
    if manifest.get("folds") == folds and manifest.get("seed") == seed and manifest.get("level") == level:
        rows = recorded_oof(bundle_folder, items)
        if rows is not None:
            return rows
    answers = active_answers(bundle_folder, items, settings, reuse, fingerprints)
    richness = manifest.get("richness")
    if not richness:
        return oof_rows(answers, items, level, folds, seed)
    from app.ensemble.rows import with_title_copies

    on_titles = None
    if richness.get("copies"):
        titles = [i.title_only() for i in items]
        on_titles = active_answers(bundle_folder, titles, settings, reuse_titles or {}, fingerprints)
    every, answers, rows = with_title_copies(items, answers, on_titles, richness.get("features", "none"),
                                             bool(richness.get("mondrian")))
    return oof_rows(answers, items, level, folds, seed, rows, [i.price for i in every])


def _compute(bundle, row: dict, items: Sequence[Item], settings) -> list[float]:
    from app.ensemble.bundle import BundleError
    from app.ensemble.service import is_llm_member, member_estimator
    from app.evaluation.runner import predict_all

    name = row["name"]
    try:  # as the service loads it (a saved member is loaded, never fitted, so no seed matters)
        estimator = _llm(row, settings) if is_llm_member(row) else member_estimator(bundle, row, settings)
    except BundleError as e:
        raise ActiveAnswersError(f"active member {name!r}: {e}") from None
    try:
        return [float(p) for p in predict_all(estimator, items, label=f"active {name}")]
    finally:
        estimator.close()


def _llm(row: dict, settings):
    """The LLM pinned to the adapter version the active bundle was fitted with."""
    from app.ensemble.service import fitted_adapter_label

    name, pin = row["name"], fitted_adapter_label(row)
    if pin is None:
        raise ActiveAnswersError(
            f"active member {name!r} is external ({row.get('ref') or 'no ref'}) and not an adapter version: its answers "
            "cannot be computed here; give the new build a member with the same fingerprint, or record the active "
            "bundle's out-of-fold answers")
    try:
        from app.pricing.llm_estimator import LlmEstimator
    except ImportError as e:
        raise ActiveAnswersError(
            f"active member {name!r} needs the LLM ({pin}) to answer on the held-out items, and it cannot be imported "
            f"here ({e}): install the serving extras (`make serve`'s cpu,serve), or give the new build the same "
            "adapter so its answers are reused") from None
    return LlmEstimator(settings, pin=pin)
