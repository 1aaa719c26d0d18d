"""A build recipe: every choice that makes a bundle, declared once, in one YAML file under version
control (recipes/*.yaml). `pricer build RECIPE` turns it into a DVC pipeline (app.build.pipeline).

    name: pricer-ensemble           # the bundle's name in the store: models/ensembles/<name>/
    data:
      train: [{path: ../shared/data/train.jsonl}]      # members learn from these (filters: origin, limit)
      heldout: {path: ../shared/data/val.jsonl}        # the stacking rows: members never see them
      # or a marketplace's own catalog, split by a seeded rule:
      # catalog: {path: my-catalog.parquet, price_column: price, heldout_fraction: 0.1, seed: 42}
    index: {embedder: minilm, data: [train]}           # the comparables index ("train": the items above)
    members:
      details-gbm: {estimator: details-gbm}
      knn: {estimator: knn, params: {k: 20}}           # reads the index
      llm: {estimator: llm, adapter: models/adapters/pricer-smollm2/<version>}
      # or trained in the build (app.build.adapter_step): llm: {estimator: llm, train: {preset: smollm2-cpu}}
    stack: {folds: 5, seed: 42, level: 0.8}            # + title_rows, richness, mondrian (app.build.stack_spec)
    scale: {ray: auto, min_items: 20000}               # large steps on Ray Data (app.build.distributed)

Relative paths are relative to the directory `pricer build` runs in (the repository root).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.build.stack_spec import Stack

TRAIN = "train"  # in index.data: the build's own training items
PARAMS_FILE = "params.yaml"  # the recipe inside a build's workspace (DVC's parameters file)
ADAPTER_STORE = "adapter-store"  # inside a build's workspace: the store its trained adapters are exported to
# TrainConfig fields a build sets itself (app.build.adapter_step), so a recipe cannot.
BUILD_SETS = {"data": "data/train.jsonl", "val": "a seeded slice of data/train.jsonl",
              "store": ADAPTER_STORE, "work_dir": "adapter-runs/<member>/", "name": "train.name"}


class RecipeError(ValueError):
    """A recipe that cannot be built; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFile(_Strict):
    path: str
    origin: str | None = Field(None, description="Keep only items whose origin starts with this (e.g. course).")
    limit: int | None = Field(None, gt=0, description="A seeded random subset of this many items.")
    sample_seed: int = Field(0, description="The subset's seed (limit).")


class Heldout(_Strict):
    path: str


class CatalogSource(_Strict):
    path: str
    price_column: str = "price"
    id_column: str = "id"
    heldout_fraction: float = Field(0.1, gt=0, le=0.5)
    seed: int = 42


class Data(_Strict):
    train: list[DataFile] = []
    heldout: Heldout | None = None
    catalog: CatalogSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Data:
        if self.catalog is None and (not self.train or self.heldout is None):
            raise ValueError("give data.train and data.heldout, or data.catalog")
        if self.catalog is not None and self.heldout is not None:
            raise ValueError("data.catalog makes its own held-out split: drop data.heldout")
        return self


class IndexSpec(_Strict):
    embedder: str = "minilm"
    data: list[str] = Field([TRAIN], description="Items files, or `train` for the build's training items.")


class TrainSpec(_Strict):
    """llm: train the adapter in the build from a `pricer train` preset (instead of naming one in the store)."""

    preset: str = Field(description="A preset of `pricer train --preset` (app.training.config.PRESETS).")
    options: dict[str, Any] = Field({}, description="TrainConfig fields over the preset (max_steps, lora_r, ...).")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                      description="The adapter's name in the store (default pricer-<member>).")

    @model_validator(mode="after")
    def _valid(self) -> TrainSpec:
        self.config()  # a typo or a bad value is refused now, not after the data stage
        return self

    def config(self):
        """The run's TrainConfig: the preset, then the options (the build then sets BUILD_SETS)."""
        from app.training.config import PRESETS, TrainConfig, build_config

        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(sorted(PRESETS))}")
        unknown = sorted(set(self.options) - set(TrainConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}: not a field of TrainConfig (`pricer train --help`)")
        fixed = sorted(set(self.options) & set(BUILD_SETS))
        if fixed:
            raise ValueError("options " + ", ".join(f"{k} (the build sets it: {BUILD_SETS[k]})" for k in fixed))
        try:
            return build_config(self.preset, **self.options)
        except ValidationError as e:
            raise ValueError("; ".join(f"options.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())) from None

    @property
    def folder(self) -> str:
        """Where its stage exports it, relative to the workspace (the stage's DVC output)."""
        return f"{ADAPTER_STORE}/adapters/{self.name}"


class Member(_Strict):
    estimator: str = Field(description="A registry name of `pricer fit` (app.estimators.base.REGISTRY).")
    params: dict[str, Any] = Field({}, description="Keyword arguments for the estimator's constructor.")
    origin: str | None = Field(None, description="Fit only on training items whose origin starts with this.")
    adapter: str | None = Field(None, description="llm: the adapter version folder that answers.")
    train: TrainSpec | None = Field(None, description="llm: train the adapter in the build instead (app.build.adapter_step).")
    augment: Literal["none", "titles"] = Field("none", exclude_if=lambda v: v == "none", description=(
        "titles: fit on every training item whole and as its title alone (Item.title_only())."))

    @model_validator(mode="after")
    def _adapter_or_train(self) -> Member:
        if self.augment != "none" and self.estimator in ("knn", "llm"):
            raise ValueError(f"`augment` is for members fitted in the build, not {self.estimator!r}")
        if self.estimator == "llm" and (self.adapter is None) == (self.train is None):
            raise ValueError("the llm member takes exactly one of `adapter` (a version in the store) and `train` "
                             "(a preset trained in the build)")
        if self.estimator != "llm" and (self.adapter is not None or self.train is not None):
            raise ValueError(f"`adapter` and `train` are for the llm member only, not {self.estimator!r}")
        return self


class Scale(_Strict):
    """Where the per-item work runs (embeddings, hidden-state features, the LLM's held-out answers)."""

    ray: Literal["never", "auto", "always"] = Field("auto", description="auto: on Ray Data from min_items items.")
    min_items: int = Field(20_000, gt=0, description="auto: items from which a step goes to Ray.")
    address: str | None = Field(None, description="A Ray cluster (ray://... or host:port); unset: RAY_ADDRESS, else local.")
    batch_size: int = Field(256, gt=0, description="Items per Ray Data batch.")


class Recipe(_Strict):
    name: str = Field("pricer-ensemble", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    data: Data
    index: IndexSpec | None = None
    members: dict[str, Member]
    stack: Stack = Stack()
    scale: Scale = Scale()

    @model_validator(mode="before")
    @classmethod
    def _adapter_names(cls, raw: Any) -> Any:
        """A trained adapter's name defaults to pricer-<member> (written into params.yaml as such)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("members"), dict):
            return raw
        members = {}
        for name, member in raw["members"].items():
            if isinstance(member, dict) and isinstance(member.get("train"), dict):
                member = member | {"train": {"name": f"pricer-{name}"} | member["train"]}
            members[name] = member
        return raw | {"members": members}

    @field_validator("members")
    @classmethod
    def _members(cls, members: dict[str, Member]) -> dict[str, Member]:
        if not members:
            raise ValueError("a recipe needs at least one member")
        for name in members:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
                raise ValueError(f"member name {name!r}: lower-case letters, digits and '-' only")
        return members

    @model_validator(mode="after")
    def _known_estimators(self) -> Recipe:
        from app.estimators.base import REGISTRY

        unknown = {n: m.estimator for n, m in self.members.items() if m.estimator not in REGISTRY}
        if unknown:
            raise ValueError(f"unknown estimator(s) {unknown}: use one of {', '.join(REGISTRY)}")
        return self

    @model_validator(mode="after")
    def _index_when_needed(self) -> Recipe:
        needs = [n for n, m in self.members.items() if m.estimator == "knn" or (m.train and m.train.config().comparables)]
        if needs and self.index is None:
            raise ValueError(f"member(s) {', '.join(needs)} read the index: declare `index`")
        names = [m.train.name for m in self.members.values() if m.train]
        if len(names) != len(set(names)):
            raise ValueError(f"two members train an adapter of the same name ({', '.join(names)}): set train.name")
        return self

    def files_for_data(self) -> list[str]:
        """The files the data step reads (its external dependencies)."""
        out = [f.path for f in self.data.train]
        out += [self.data.heldout.path] if self.data.heldout else []
        out += [self.data.catalog.path] if self.data.catalog else []
        return list(dict.fromkeys(out))


_ABSENT = object()


def _set(tree: dict, dotted: str, value: Any) -> None:
    """tree[a][b]... = value for `a.b...`; a number indexes a list (data.train.0.limit); null removes the key."""
    keys = dotted.split(".")
    node: Any = tree
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise RecipeError(f"--set {dotted}: {key!r} is not an index of a list of {len(node)}")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last and value is None:  # KEY=null removes it: a member left out, a section back to its default
                if node.pop(key, _ABSENT) is _ABSENT:
                    raise RecipeError(f"--set {dotted}=null: there is no {key!r} to remove")
            elif last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise RecipeError(f"--set {dotted}: {key!r} is inside a value, not a section")


def parse(raw: dict, source: str, overrides: list[str] = ()) -> Recipe:
    """A validated recipe from its YAML mapping, with `key.sub=value` overrides (values read as YAML)."""
    raw = dict(raw or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set takes KEY=VALUE (e.g. stack.seed=7), got {item!r}")
        _set(raw, key, yaml.safe_load(value))
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()]
        raise RecipeError(f"{source}: not a valid recipe:\n" + "\n".join(lines)) from None


def load(path: Path | str, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RecipeError(f"cannot read recipe {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not YAML ({e})") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping (name, data, members, ...)")
    return parse(raw, str(path), overrides)


def check_files(recipe: Recipe) -> None:
    """Every file the recipe reads exists (after `resolved`): say which are missing before DVC starts."""
    wanted = [*recipe.files_for_data(), *(p for p in (recipe.index.data if recipe.index else []) if p != TRAIN)]
    wanted += [m.adapter for m in recipe.members.values() if m.adapter]
    missing = [p for p in wanted if not Path(p).exists()]
    if missing:
        raise RecipeError("the recipe names files that are not here: " + ", ".join(missing))


def resolved(recipe: Recipe, base: Path) -> Recipe:
    """The recipe with every file path absolute (the pipeline runs in its own workspace folder)."""
    def fix(p: str) -> str:
        return p if p == TRAIN or Path(p).is_absolute() else str((base / p).resolve())

    raw = recipe.model_dump(mode="json")
    for f in raw["data"]["train"]:
        f["path"] = fix(f["path"])
    for part in ("heldout", "catalog"):
        if raw["data"].get(part):
            raw["data"][part]["path"] = fix(raw["data"][part]["path"])
    if raw.get("index"):
        raw["index"]["data"] = [fix(p) for p in raw["index"]["data"]]
    for member in raw["members"].values():
        if member.get("adapter"):
            member["adapter"] = fix(member["adapter"])
        model = (member.get("train") or {}).get("options", {}).get("base")
        if model and not Path(model).is_absolute() and (base / model).exists():  # a folder (not a name, a hub id)
            member["train"]["options"]["base"] = str((base / model).resolve())
    return Recipe.model_validate(raw)

