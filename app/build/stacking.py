"""The build's last two stages: the stack over the members' held-out answers (bundle/), and its
evaluation (evaluation/: metrics.json for `dvc metrics show`, the out-of-fold answers that promotion
compares, charts)."""

from __future__ import annotations

import json
from pathlib import Path

from app.build.recipe import ADAPTER_STORE, TRAIN, Member, Recipe
from app.build.steps import (ANSWERS, BUILD_VERSION, BUNDLE, DATA, EVALUATION, StepError, heldout_items,
                             index_files, recipe_here, trained_version)
from app.model.items import Item
from app.runtime.atomic import atomic_write_text


def _answers(ws: Path, name: str, heldout: list[Item]) -> list[float]:
    from app.ensemble.members import MemberError, MemberSource, answers_from_report

    try:
        return answers_from_report(MemberSource(name, report=Path(ws) / ANSWERS / f"{name}.jsonl"), heldout)
    except MemberError as e:
        raise StepError(str(e)) from None


def _row(ws: Path, recipe: Recipe, name: str, member: Member, settings) -> tuple[dict, Path | None]:
    """The member's manifest row, and its saved folder (None: served from the index or the store)."""
    from app.ensemble.bundle import BundleError, external_fingerprint
    from app.ensemble.members import FITTED_HERE, FITTED_INDEX
    from app.index.manifest import sha256_file

    if member.estimator == "knn":
        from app.estimators.knn import KnnEstimator

        knn = KnnEstimator(**member.params)
        index = {"embedder": recipe.index.embedder, "data_sha256": [sha256_file(p) for p in index_files(ws, recipe)]}
        params = {"k": knn.k, "rule": knn.rule, "temperature": knn.temperature}
        return {"name": name, "kind": "external", "estimator": "knn", "params": params, "index": index,
                "fitted": FITTED_INDEX}, None
    if member.estimator == "llm":  # a trained adapter: its ref in the workspace's store is its ref once published
        store = Path(ws).resolve() / ADAPTER_STORE if member.train else Path(settings.models_dir).resolve()
        adapter = trained_version(ws, member).resolve() if member.train else Path(member.adapter or "").resolve()
        if not (member.adapter or member.train) or store not in adapter.parents:
            raise StepError(f"member {name!r}: the llm member needs `adapter`, a version folder inside the model store "
                            f"{store} (the service finds it there), got {member.adapter!r}")
        try:
            file, sha = external_fingerprint(adapter)
        except BundleError as e:
            raise StepError(f"member {name!r}: {e}") from None
        return {"name": name, "kind": "external", "file": file, "sha256": sha,
                "ref": str(adapter.relative_to(store))}, None
    return {"name": name, "estimator": member.estimator, "fitted": FITTED_HERE}, Path(ws) / "members" / name


def _facts(path: Path) -> dict:
    from app.ensemble.assemble import file_facts
    from app.model.item_files import load_items

    return file_facts(path, len(load_items(path)))


def stack_step(ws: Path, settings) -> Path:
    """bundle/build/: the stack fitted on the held-out rows from the members' answers there, with the
    cross-validated table; published into the model store later (app.build.publish)."""
    import shutil

    from app.ensemble.assemble import assemble

    recipe = recipe_here(ws)
    heldout = heldout_items(ws)
    answers, rows = {}, []
    for name, member in recipe.members.items():
        answers[name] = _answers(ws, name, heldout)
        rows.append(_row(ws, recipe, name, member, settings))
    root = Path(ws) / BUNDLE
    shutil.rmtree(root, ignore_errors=True)
    train = [_facts(Path(ws) / DATA / "train.jsonl")]
    if recipe.index is not None:
        train += [_facts(p) for p in recipe.index.data if p != TRAIN]
    folder, _ = assemble(root, answers, rows, heldout, name=recipe.name, level=recipe.stack.level,
                         folds=recipe.stack.folds, seed=recipe.stack.seed, train=train,
                         val=_facts(Path(ws) / DATA / "heldout.jsonl"), version=BUILD_VERSION)
    return folder


def built_bundle(ws: Path) -> Path:
    return Path(ws) / BUNDLE / BUILD_VERSION


def evaluate_step(ws: Path) -> dict:
    """evaluation/metrics.json (the nested cross-validated scores), oof.jsonl (the full stack's
    out-of-fold answers on the held-out rows, keyed by item: what promotion compares) and charts."""
    from app.build.promote import oof_rows, write_oof
    from app.evaluation.charts import scatter_chart
    from app.evaluation.metrics import score

    recipe = recipe_here(ws)
    heldout = heldout_items(ws)
    manifest = json.loads((built_bundle(ws) / "manifest.json").read_text())
    answers = {name: _answers(ws, name, heldout) for name in recipe.members}
    rows = oof_rows(answers, heldout, recipe.stack.level, recipe.stack.folds, recipe.stack.seed)
    out = Path(ws) / EVALUATION
    write_oof(out / "oof.jsonl", rows)
    table = manifest["cross_validated"]
    from app.ensemble.combine import subset_key

    metrics = {"items": len(heldout), "stack": table["stacks"][subset_key(recipe.members)],
               "members": table["members"]}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    truths, guesses = [i.price for i in heldout], [r["guess"] for r in rows]
    (out / "charts").mkdir(parents=True, exist_ok=True)
    scatter_chart(out / "charts" / "stack-oof.png", truths, guesses, score(truths, guesses),
                  f"{recipe.name}: the stack out of fold on the held-out rows")
    for name, prices in answers.items():
        scatter_chart(out / "charts" / f"member-{name}.png", truths, prices, score(truths, prices), f"member {name}")
    return metrics
