"""A build's per-item work on Ray Data, for catalogs too large for one machine (issue 29): the
members' feature matrices (embeddings, an LLM's hidden states) and the held-out answers of knn and
the llm. The batch job's machinery does it (app.batch.engine: its connection, its plan of workers,
its settings for workers): the items become a dataset, `map_batches` runs a stateful class that
makes the member's estimator once per actor, and the rows come back in item order. Fitting stays on
the driver: one scikit-learn model on the whole matrix, the same model a local build fits.

app.build.steps imports this module, so the step's own factories (make_estimator, the llm's) come in
as arguments; Ray sends them to the actors by reference. On a cluster, as for `pricer price`, every
node needs the project installed and the workspace and the model store on a path they all read (the
actors load saved members, the index and the adapter from there).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import SimpleNamespace

from app.build.recipe import PARAMS_FILE, Member, Scale
from app.build.recipe import load as load_recipe
from app.model.items import Item

PREDICT_CHUNK = 64  # app.evaluation.runner.predict_all's chunks: the same rows in each predict call


def use_ray(scale: Scale, n_items: int) -> bool:
    """never / always, or auto: from `min_items` items (below, starting Ray costs more than it saves)."""
    return scale.ray == "always" or (scale.ray == "auto" and n_items >= scale.min_items)


def fits_on_inputs(estimator) -> bool:
    """A scikit-learn member whose inputs need nothing learned first (its fit is the shared one):
    features-lr (its brands) and details-gbm (its levels) learn from the items before their inputs,
    so they fit locally, on inputs that are cheap anyway."""
    from app.estimators.sklearn_base import SklearnEstimator

    return isinstance(estimator, SklearnEstimator) and type(estimator).fit is SklearnEstimator.fit


def answers_there(estimator, member: Member) -> bool:
    """The members whose held-out answers can come from Ray: a fitted scikit-learn one, knn, the llm."""
    from app.estimators.sklearn_base import SklearnEstimator

    return isinstance(estimator, SklearnEstimator) or member.estimator in ("knn", "llm")


def _option_values(options) -> dict:
    """EstimatorOptions as plain values for the actors (the settings as the batch job sends them)."""
    from app.batch.run import worker_settings

    return {"settings": worker_settings(options.settings), "seed": options.seed, "adapter": options.adapter,
            "url": options.url}


def _options(values: dict):
    from app.config import Settings
    from app.estimators.base import EstimatorOptions

    return EstimatorOptions(**{**values, "settings": Settings(**values["settings"])})


def _member_estimator(make: Callable, estimator_name: str, params: dict, values: dict):
    """On an actor: the estimator as the step makes it (make: app.build.steps.make_estimator)."""
    return make(estimator_name, Member(estimator=estimator_name, params=params), _options(values))


def _answerer(ws: str, name: str, values: dict, make: Callable, llm: Callable):
    """On an actor: knn over the build's index, or the llm pinned to its adapter, as member_step makes them."""
    recipe = load_recipe(Path(ws) / PARAMS_FILE)
    member, options = recipe.members[name], _options(values)
    if member.estimator == "llm":
        return llm(Path(ws), recipe, member, options.settings)
    from app.index.index import Index

    return make(name, member, options).use_index(Index.load(Path(ws) / "index"))


class _Worker:
    """Ray Data's stateful class: one estimator per actor, then its inputs or its answers per batch."""

    def __init__(self, build: Callable, kind: str, label: str, reaper: bool):
        if reaper:  # vLLM's engine core is this actor's child: it must not outlive a lost actor
            from app.runtime.reaper import start_reaper

            self.reaper = start_reaper()
        self.estimator, self.kind, self.label = build(), kind, label

    def __call__(self, batch: dict) -> dict:
        import numpy as np
        import ray

        items = [Item.model_validate_json(text) for text in batch["item"]]
        if self.kind == "answers":
            from app.evaluation.runner import predict_all

            out = {"price": np.asarray(predict_all(self.estimator, items, label=self.label), dtype=np.float64)}
        else:
            inputs = self.estimator.inputs(items)
            # A matrix travels as a tensor column; texts and feature dicts as JSON (Arrow would make
            # dicts with different keys one struct, filling the missing keys with nulls).
            is_matrix = isinstance(inputs, np.ndarray)
            out = {"x": inputs} if is_matrix else {"json": np.array([json.dumps(x) for x in inputs])}
        node = ray.get_runtime_context().get_node_id()
        return {"i": batch["i"], **out, "node": np.array([node] * len(items))}

    def __del__(self):
        estimator = getattr(self, "estimator", None)
        if estimator is not None:
            estimator.close()


def _on_ray(build: Callable, kind: str, items: Sequence[Item], scale: Scale, settings, label: str, gpus: bool) -> dict:
    """The dataset of the items -> map_batches(_Worker) -> its columns, back in item order."""
    import numpy as np

    from app.batch.engine import connect, plan

    if not items:
        raise ValueError(f"{label}: no items to send to Ray")
    ray = connect(scale.address or None, None)  # None: RAY_ADDRESS, else a local Ray
    import ray.data

    wanted = SimpleNamespace(workers=None, cpus_per_worker=None, gpus_per_worker=None if gpus else 0.0)
    workers, cpus_each, gpus_each = plan(wanted, ray)
    context = ray.data.DataContext.get_current()
    context.actor_task_retry_on_errors = False  # a deterministic failure stops the step, as in the batch job
    context.wait_for_min_actors_s = settings.batch_actor_start_s  # every actor gets batches, not the first one ready
    blocks = math.ceil(len(items) / scale.batch_size)
    workers = min(workers, blocks)
    data = ray.data.from_items([{"i": i, "item": item.model_dump_json()} for i, item in enumerate(items)],
                               override_num_blocks=blocks)
    done = data.map_batches(
        _Worker, fn_constructor_kwargs=dict(build=build, kind=kind, label=label, reaper=kind == "answers"),
        batch_size=scale.batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_each, num_gpus=gpus_each or None, max_restarts=-1, max_task_retries=-1,
        scheduling_strategy="SPREAD")  # actors across the nodes
    parts = list(done.iter_batches(batch_format="numpy", batch_size=None))
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    ids = columns.pop("i")
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(ids[order], np.arange(len(items))):  # every item exactly once
        raise RuntimeError(f"{label}: Ray returned {len(ids)} rows for {len(items)} items")
    nodes = sorted(set(columns.pop("node").tolist()))
    print(f"ray: {label}: {kind} of {len(items)} items in {blocks} batches on {len(nodes)} node(s) "
          f"({workers} worker(s))", flush=True)
    return {key: value[order] for key, value in columns.items()}


def features_on_ray(estimator_name: str, params: dict, options, items: Sequence[Item], scale: Scale, make: Callable):
    """`estimator.inputs(items)` computed on Ray, the estimator made per actor by `make` (the step's
    make_estimator) from its name (or a saved folder) and the recipe's params: a numpy matrix where
    the estimator gives one, else the same list (texts, feature dicts)."""
    build = partial(_member_estimator, make, estimator_name, dict(params), _option_values(options))
    got = _on_ray(build, "inputs", items, scale, options.settings, Path(estimator_name).name, gpus=False)
    return got["x"] if "x" in got else [json.loads(text) for text in got["json"]]


def answers_on_ray(build: Callable, items: Sequence[Item], scale: Scale, settings, label: str,
                   gpus: bool = False) -> list[float]:
    """The prices an estimator answers for the items, made once per actor by `build()` (picklable)."""
    return [float(p) for p in _on_ray(build, "answers", items, scale, settings, label, gpus)["price"]]


def heldout_on_ray(ws: Path, name: str, estimator, folder: Path, heldout: Sequence[Item], options, scale: Scale,
                   make: Callable, llm: Callable) -> list[float]:
    """A member's held-out answers from Ray. A fitted scikit-learn member: its inputs from its saved
    folder (what it learned, brands and levels included), predicted here in predict_all's chunks;
    knn and the llm: the same estimator made per actor, a vLLM engine per actor for the llm."""
    from app.estimators.sklearn_base import SklearnEstimator, from_log

    if isinstance(estimator, SklearnEstimator):
        inputs = features_on_ray(str(folder), {}, options, heldout, scale, make)
        return [p for start in range(0, len(heldout), PREDICT_CHUNK)
                for p in from_log(estimator.model.predict(inputs[start:start + PREDICT_CHUNK]))]
    is_llm = getattr(estimator, "name", "") == "llm"
    build = partial(_answerer, str(Path(ws).resolve()), name, _option_values(options), make, llm)
    return answers_on_ray(build, heldout, scale, options.settings, name, gpus=is_llm)
