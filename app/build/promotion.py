"""After `dvc repro`: the built bundle against the active one on the same held-out items, then publish
and promote it when the rule says so (app.build.promote holds the measurement and the rule). A build
that is not promoted stays in its workspace and leaves the store untouched: replicas on the `latest`
policy take any new version they find, so publishing is promoting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.build.recipe import ADAPTER_STORE, Recipe
from app.build.stacking import built_bundle, read_title_answers
from app.build.steps import ANSWERS, EVALUATION, INDEX, heldout_items, trained_version

@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _label(folder: Path) -> str:
    return f"{folder.parent.name}@{folder.name}"


def _build_facts(ws: Path, recipe_file: Path, digest: str) -> dict:
    from app.index.manifest import sha256_file

    lock = Path(ws) / "dvc.lock"
    return {"digest": digest, "recipe": str(recipe_file), "recipe_sha256": sha256_file(Path(recipe_file)),
            "dvc_lock_sha256": sha256_file(lock) if lock.is_file() else None}


def _measure(ws: Path, recipe: Recipe, active: Path | None, settings):
    """The comparison on the build's held-out items (None when nothing is active)."""
    from app.build.promote import active_oof, bundle_fingerprints, compare, read_oof
    from app.ensemble.members import MemberSource, answers_from_report

    if active is None:
        return None
    items = heldout_items(ws)
    reuse = {name: answers_from_report(MemberSource(name, report=Path(ws) / ANSWERS / f"{name}.jsonl"), items)
             for name in recipe.members}
    titles = ([i.title_only() for i in items] if recipe.stack.title_rows else [])
    reuse_titles = {name: read_title_answers(ws, name, titles) for name in recipe.members} if titles else {}
    stack = recipe.stack
    active_rows = active_oof(active, items, settings, reuse, bundle_fingerprints(built_bundle(ws)),
                             stack.level, stack.folds, stack.seed, reuse_titles)
    return compare(read_oof(Path(ws) / EVALUATION / "oof.jsonl"), active_rows, items, stack.level)


def run_promotion(ws: Path, recipe: Recipe, recipe_file: Path, settings, rule: str) -> Outcome:
    from app.build.promote import OOF_FILE, active_folder, decide, promote, record, rmsle_line
    from app.build.publish import digest_of, install_adapter, install_index, published_as, publish
    from app.runtime.atomic import atomic_write_text
    from app.ensemble.bundle import content_digest

    out = Outcome()
    built, store = built_bundle(ws), Path(settings.models_dir)
    digest = content_digest(built)
    metrics = json.loads((Path(ws) / EVALUATION / "metrics.json").read_text())
    s = metrics["stack"]
    low, high = s["mean_error_ci"]
    out.lines.append(f"built {recipe.name} (digest {digest[:12]}): the stack out of fold on {metrics['items']} held-out "
                     f"items ${s['mean_error']:.2f} [{low:.2f}, {high:.2f}], RMSLE {s['rmsle']:.3f}, "
                     f"hits {s['hit_rate'] * 100:.1f}%, coverage {s.get('coverage', 0) * 100:.1f}%")
    if "titles" in metrics:  # stack.title_rows: the same held-out items sent as titles alone, nested too
        t = metrics["titles"]["stack"]
        out.lines.append(f"as titles only: ${t['mean_error']:.2f} [{t['mean_error_ci'][0]:.2f}, {t['mean_error_ci'][1]:.2f}], "
                         f"RMSLE {t['rmsle']:.3f}, hits {t['hit_rate'] * 100:.1f}%, coverage {t.get('coverage', 0) * 100:.1f}%")
    out.summary = {"digest": digest, "workspace": str(ws), "stack": s, "promoted": False}
    active = active_folder(store, recipe.name)
    if active is not None and digest_of(active) == digest:
        out.lines.append(f"the active bundle {_label(active)} is this build: nothing to publish or promote")
        out.summary.update(bundle=str(active), active=True)
        return out
    comparison = _measure(ws, recipe, active, settings)
    decision = decide(comparison, rule, recipe.stack.level)
    out.summary["comparison"] = None if comparison is None else comparison.to_dict()
    against = _label(active) if active is not None else None
    if comparison is not None and comparison.rmsle_difference_ci is not None:
        out.lines.append(f"paired on the same {comparison.n} items: {rmsle_line(comparison)}")
    if not decision.promote:
        atomic_write_text(Path(ws) / EVALUATION / "promotion.json", json.dumps(
            {"rule": rule, "against": against, "promote": False, "reason": decision.reason,
             "comparison": out.summary["comparison"]}, indent=2) + "\n")
        out.lines.append(f"not promoted (against {against}): {decision.reason}; the bundle stays in {built}")
        out.summary["reason"] = decision.reason
        return out
    for member in (m for m in recipe.members.values() if m.train is not None):  # before the bundle that names them
        installed = install_adapter(trained_version(ws, member), Path(ws) / ADAPTER_STORE, store)
        out.lines += [f"adapter installed: {installed}"] if installed else []
    folder = published_as(store, recipe.name, digest)
    if folder is None:
        folder = publish(built, store, recipe.name, _build_facts(ws, recipe_file, digest),
                         {OOF_FILE: Path(ws) / EVALUATION / "oof.jsonl"})
    record(folder, comparison, decision, rule, against)
    if recipe.index is not None:
        from app.index.manifest import IndexManifest

        index = IndexManifest.read(Path(ws) / INDEX)
        installed = install_index(Path(ws) / INDEX, settings, index.embedder, [d.sha256 for d in index.data])
        if installed is not None:
            out.lines.append(f"index installed: {installed}")
    state = promote(store, recipe.name, folder.name)
    out.lines.append(f"promoted {_label(folder)} (against {against}): {decision.reason}; desired state generation "
                     f"{state.generation}: every replica on this store loads it")
    out.summary.update(bundle=str(folder), promoted=True, reason=decision.reason, generation=state.generation)
    return out
