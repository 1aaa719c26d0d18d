"""What each stage of a build does (app.build.pipeline names them), run by DVC in the workspace as
`pricer build-step KIND [NAME]`. Every step reads the workspace's params.yaml (the recipe, paths
absolute), writes only its own outputs, each atomically, and is deterministic for the same inputs:
seeded subsets, seeded estimators, the stack's seeded folds.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from app.build.recipe import ADAPTER_STORE, PARAMS_FILE, TRAIN, Member, Recipe
from app.build.recipe import load as load_recipe
from app.model.item_files import load_items, write_items
from app.model.items import Item, from_origin
from app.runtime.atomic import atomic_write_text, building

DATA, INDEX, MEMBERS, ANSWERS, BUNDLE, EVALUATION = "data", "index", "members", "answers", "bundle", "evaluation"
MEMBER_FILE = "member.json"  # knn and llm: what the recipe declared (nothing else is saved)
BUILD_VERSION = "build"  # the bundle's version inside the workspace; publishing gives it a real one


class StepError(ValueError):
    """A step that cannot run with this recipe or data; the message says which and why."""


def recipe_here(workspace: Path) -> Recipe:
    return load_recipe(Path(workspace) / PARAMS_FILE)


def _train_file(spec) -> list[Item]:
    items = load_items(spec.path)
    items = from_origin(items, spec.origin)
    if spec.limit is not None and spec.limit < len(items):
        picked = sorted(random.Random(spec.sample_seed).sample(range(len(items)), spec.limit))
        items = [items[i] for i in picked]
    if not items:
        raise StepError(f"{spec.path}: no items left after the recipe's filters")
    return items


def data_step(ws: Path) -> dict:
    """data/train.jsonl and data/heldout.jsonl (+ errors.jsonl for a catalog's unusable rows)."""
    recipe = recipe_here(ws)
    with building(ws / DATA) as tmp:
        if recipe.data.catalog is not None:
            from app.build.catalog import read_priced_catalog, split_heldout, write_catalog_outputs

            spec = recipe.data.catalog
            catalog = read_priced_catalog(spec.path, price_column=spec.price_column, id_column=spec.id_column)
            train, heldout = split_heldout(catalog.ids, catalog.items, fraction=spec.heldout_fraction, seed=spec.seed)
            facts = write_catalog_outputs(catalog, train, heldout, tmp)
        else:
            train = [i for spec in recipe.data.train for i in _train_file(spec)]
            heldout = load_items(recipe.data.heldout.path)
            write_items(tmp / "train.jsonl", train)
            write_items(tmp / "heldout.jsonl", heldout)
            atomic_write_text(tmp / "errors.jsonl", "")
            facts = {"train": len(train), "heldout": len(heldout), "errors": 0}
            atomic_write_text(tmp / "facts.json", json.dumps(facts, indent=2) + "\n")
    return facts


def train_items(ws: Path) -> list[Item]:
    return load_items(Path(ws) / DATA / "train.jsonl")


def heldout_items(ws: Path) -> list[Item]:
    return load_items(Path(ws) / DATA / "heldout.jsonl")


def index_files(ws: Path, recipe: Recipe) -> list[Path]:
    return [Path(ws) / DATA / "train.jsonl" if p == TRAIN else Path(p) for p in recipe.index.data]


def index_step(ws: Path, settings) -> Path:
    """index/: reused from the store's index root when one there was built with the same embedder
    from the same files (by content: the shipped index takes minutes to embed), else built."""
    from app.index.embedders import get_embedder
    from app.index.manifest import find_built_from, sha256_file
    from app.index.service import index_root
    from app.index.store import build_from_files

    recipe = recipe_here(ws)
    files = index_files(ws, recipe)
    found, _ = find_built_from(index_root(settings), recipe.index.embedder, [sha256_file(p) for p in files])
    target = Path(ws) / INDEX
    if found is not None:
        print(f"index: reusing {found} (built with {recipe.index.embedder} from the same files)")
        with building(target) as tmp:
            shutil.copytree(found, tmp, dirs_exist_ok=True)
        return target
    scratch = Path(ws) / ".index-build"
    shutil.rmtree(scratch, ignore_errors=True)
    built = build_from_files(files, scratch, get_embedder(recipe.index.embedder), progress=True)
    shutil.rmtree(target, ignore_errors=True)
    built.rename(target)
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def make_estimator(name: str, member: Member, options):
    """The member's estimator by registry name, made as `pricer fit` makes it; the recipe's params
    then set its attributes of the same names (knn's k, llm-head's depth and layers)."""
    from app.estimators.base import create

    if member.estimator == "llm":
        raise StepError(f"member {name!r}: the llm member is scored by its own step")
    estimator = create(member.estimator, options)
    unknown = sorted(key for key in member.params if key.startswith("_") or not hasattr(estimator, key))
    if unknown:
        raise StepError(f"member {name!r}: estimator {member.estimator!r} has no setting {', '.join(unknown)}")
    for key, value in member.params.items():
        setattr(estimator, key, value)
    return estimator


def trained_version(ws: Path, member: Member) -> Path:
    """The newest version the member's adapter stage exported (<ws>/adapter-store/adapters/<name>/)."""
    from app.adapters.store import scan

    found = [v.path for v in scan(Path(ws) / ADAPTER_STORE / "adapters") if v.name == member.train.name and not v.problem]
    if not found:
        raise StepError(f"no adapter version in {Path(ws) / member.train.folder}: its stage has not run")
    return found[-1]


def _llm(ws: Path, recipe: Recipe, member: Member, settings):
    from app.pricing.llm_estimator import LlmEstimator, store_pin

    if recipe.index is not None:  # neighbours in the prompt come from the build's own index
        settings = settings.model_copy(update={"index_dir": Path(ws) / INDEX})
    adapter = member.adapter
    if member.train is not None:  # the workspace's adapter store; the base (and the index) stay the real store's
        from app.index.service import index_root

        adapter = str(trained_version(ws, member))
        settings = settings.model_copy(update={"base_model": str(settings.base_model_path().resolve()),
                                               "index_dir": index_root(settings).resolve()})
    pinned, pin = store_pin(settings, adapter)
    return LlmEstimator(pinned, pin)


def training_items(ws: Path, name: str, member: Member) -> list[Item]:
    """The member's training items: its origin's, and with `augment: titles` each also as its title alone."""
    train = from_origin(train_items(ws), member.origin)
    if not train:
        raise StepError(f"member {name!r}: no training items (origin {member.origin!r})")
    return train + [i.title_only() for i in train] if member.augment == "titles" else train


def member_step(ws: Path, name: str, settings) -> int:
    """members/<name>/ (the saved estimator; for knn and the llm, which are served from the index and
    the adapter store, only member.json) and answers/<name>.jsonl: its answers on the held-out rows,
    which it never trained on (with stack.title_rows, answers/<name>.titles.jsonl too: on the same
    rows as their titles alone)."""
    from app.build.pipeline import titles_answers
    from app.build.distributed import answers_there, features_on_ray, fits_on_inputs, heldout_on_ray, use_ray
    from app.estimators.base import EstimatorOptions
    from app.evaluation.report import write_report
    from app.evaluation.runner import predict_all

    recipe = recipe_here(ws)
    if name not in recipe.members:
        raise StepError(f"no member {name!r} in the recipe (members: {', '.join(recipe.members)})")
    member = recipe.members[name]
    options = EstimatorOptions(settings=settings, seed=recipe.stack.seed, adapter=member.adapter)
    heldout, folder = heldout_items(ws), Path(ws) / MEMBERS / name
    estimator = _llm(ws, recipe, member, settings) if member.estimator == "llm" else make_estimator(name, member, options)
    try:
        if member.estimator in ("knn", "llm"):
            if member.estimator == "knn":
                from app.index.index import Index

                estimator.use_index(Index.load(Path(ws) / INDEX))
            with building(folder, replace=True) as tmp:
                atomic_write_text(tmp / MEMBER_FILE, json.dumps({"member": name, **member.model_dump(mode="json")},
                                                                indent=2) + "\n")
        else:
            train = training_items(ws, name, member)
            if use_ray(recipe.scale, len(train)) and fits_on_inputs(estimator):  # the inputs on Ray, the fit here
                estimator.check_training_items(train)
                estimator.fit_inputs(features_on_ray(member.estimator, member.params, options, train, recipe.scale,
                                                     make_estimator), train)
            else:
                estimator.fit(train)
            estimator.save(folder)
        asked = {f"{ANSWERS}/{name}.jsonl": heldout}
        if recipe.stack.title_rows:
            asked[titles_answers(name)] = [i.title_only() for i in heldout]
        for file, items in asked.items():
            if use_ray(recipe.scale, len(items)) and answers_there(estimator, member):
                prices = heldout_on_ray(ws, name, estimator, folder, items, options, recipe.scale, make_estimator, _llm)
            else:
                prices = predict_all(estimator, items, label=name)
            write_report(Path(ws) / file, items, prices)
    finally:
        estimator.close()
    return len(heldout)
