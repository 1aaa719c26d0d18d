"""The build's last two stages: the stack over the members' held-out answers (bundle/), and its
evaluation (evaluation/: metrics.json for `dvc metrics show`, the out-of-fold answers that promotion
compares, charts). With the recipe's stack options (app.build.stack_spec) the stacking rows carry their
richness classes and, with title_rows, the held-out items' title-only copies (app.ensemble.rows)."""

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


def read_title_answers(ws: Path, name: str, titles: list[Item]) -> list[float]:
    """The member's answers on the title-only copies, in their order (copies may repeat: read by line)."""
    from app.build.pipeline import titles_answers
    from app.evaluation.report import item_key

    path = Path(ws) / titles_answers(name)
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise StepError(f"member {name!r}: {path}: {e} (stack.title_rows: its member stage writes it)") from None
    if [r.get("item") for r in rows] != [item_key(t) for t in titles]:
        raise StepError(f"member {name!r}: {path} is not on the {len(titles)} held-out items' titles, in order")
    return [float(r["guess"]) for r in rows]


def stacking_rows(ws: Path, recipe: Recipe, heldout: list[Item]):
    """(the stacking items, each member's answers on them, StackRows or None): the held-out items, then
    with stack.title_rows their title-only copies (an item and its copy in one group)."""
    from app.ensemble.rows import with_title_copies

    answers = {name: _answers(ws, name, heldout) for name in recipe.members}
    if not recipe.stack.uses_rows:
        return heldout, answers, None
    titles = [i.title_only() for i in heldout] if recipe.stack.title_rows else None
    on_titles = {name: read_title_answers(ws, name, titles) for name in recipe.members} if titles else None
    return with_title_copies(heldout, answers, on_titles, recipe.stack.richness, recipe.stack.mondrian)


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
    augment = {"augment": member.augment} if member.augment != "none" else {}
    return {"name": name, "estimator": member.estimator, "fitted": FITTED_HERE, **augment}, Path(ws) / "members" / name


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
    items, answers, stack_rows = stacking_rows(ws, recipe, heldout)
    rows = [_row(ws, recipe, name, member, settings) for name, member in recipe.members.items()]
    root = Path(ws) / BUNDLE
    shutil.rmtree(root, ignore_errors=True)
    train = [_facts(Path(ws) / DATA / "train.jsonl")]
    if recipe.index is not None:
        train += [_facts(p) for p in recipe.index.data if p != TRAIN]
    folder, _ = assemble(root, answers, rows, items, name=recipe.name, level=recipe.stack.level,
                         folds=recipe.stack.folds, seed=recipe.stack.seed, train=train,
                         val=_facts(Path(ws) / DATA / "heldout.jsonl"), version=BUILD_VERSION, stack_rows=stack_rows)
    return folder


def built_bundle(ws: Path) -> Path:
    return Path(ws) / BUNDLE / BUILD_VERSION


def evaluate_step(ws: Path) -> dict:
    """evaluation/metrics.json (the nested cross-validated scores), oof.jsonl (the full stack's
    out-of-fold answers on the held-out rows, keyed by item: what promotion compares) and charts."""
    from app.build.promote import oof_rows, write_oof
    from app.evaluation.charts import scatter_chart
    from app.evaluation.metrics import score

    from app.ensemble.combine import subset_key

    recipe = recipe_here(ws)
    heldout = heldout_items(ws)
    manifest = json.loads((built_bundle(ws) / "manifest.json").read_text())
    items, every, stack_rows = stacking_rows(ws, recipe, heldout)
    rows = oof_rows(every, heldout, recipe.stack.level, recipe.stack.folds, recipe.stack.seed, stack_rows,
                    [i.price for i in items])
    answers = {name: prices[:len(heldout)] for name, prices in every.items()}
    out = Path(ws) / EVALUATION
    write_oof(out / "oof.jsonl", rows)
    table, key = manifest["cross_validated"], subset_key(recipe.members)
    metrics = {"items": len(heldout), "stack": table["stacks"][key], "members": table["members"]}
    if "titles" in table:  # the same held-out items as titles alone, nested like the rest
        metrics["titles"] = {"items": table["titles"]["n"], "stack": table["titles"]["stacks"][key],
                             "members": table["titles"]["members"]}
    if "by_richness" in table:
        metrics["by_richness"] = {c: {"items": part["n"], "stack": part["stacks"][key]}
                                  for c, part in table["by_richness"].items()}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    truths, guesses = [i.price for i in heldout], [r["guess"] for r in rows]
    (out / "charts").mkdir(parents=True, exist_ok=True)
    scatter_chart(out / "charts" / "stack-oof.png", truths, guesses, score(truths, guesses),
                  f"{recipe.name}: the stack out of fold on the held-out rows")
    for name, prices in answers.items():
        scatter_chart(out / "charts" / f"member-{name}.png", truths, prices, score(truths, prices), f"member {name}")
    return metrics
