"""The recipe: validated before anything runs, overridden one key at a time, rendered as DVC stages that
make each member depend only on what it reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.build import pipeline
from app.build import recipe as recipes

SHIPPED = Path(__file__).parents[2] / "recipes" / "shipped.yaml"


def test_the_committed_recipes_validate():
    for path in sorted(SHIPPED.parent.glob("*.yaml")):
        recipes.load(path)


def test_set_overrides_one_key_and_refuses_what_is_not_there():
    got = recipes.load(SHIPPED, ["data.train.0.limit=500", "members.knn.params.k=5", "stack.seed=7"])
    assert got.data.train[0].limit == 500 and got.members["knn"].params["k"] == 5 and got.stack.seed == 7
    assert got.members["knn"].params["rule"] == "mean"  # the rest of the section stays
    with pytest.raises(recipes.RecipeError, match="not an index"):
        recipes.load(SHIPPED, ["data.train.1.limit=5"])
    with pytest.raises(recipes.RecipeError, match="stack.bogus: Extra inputs"):
        recipes.load(SHIPPED, ["stack.bogus=1"])
    with pytest.raises(recipes.RecipeError, match="KEY=VALUE"):
        recipes.load(SHIPPED, ["stack.seed"])


def test_set_null_removes_a_member_and_says_when_there_is_none():
    got = recipes.load(SHIPPED, ["members.knn=null"])
    assert "knn" not in got.members and "embed-gbm" in got.members
    with pytest.raises(recipes.RecipeError, match="no 'nope' to remove"):
        recipes.load(SHIPPED, ["members.nope=null"])


@pytest.mark.parametrize("change, message", [
    ({"members": {"a": {"estimator": "nonsense"}}}, "unknown estimator"),
    ({"members": {}}, "at least one member"),
    ({"members": {"Bad_Name": {"estimator": "constant"}}}, "lower-case"),
    ({"members": {"k": {"estimator": "knn"}}}, "read the index"),
    ({"data": {"train": [{"path": "t.jsonl"}]}}, "data.train and data.heldout, or data.catalog"),
])
def test_a_bad_recipe_is_refused_with_the_field_named(change, message):
    raw = {"data": {"train": [{"path": "t.jsonl"}], "heldout": {"path": "h.jsonl"}},
           "members": {"c": {"estimator": "constant"}}} | change
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.parse(raw, "r.yaml")


def test_missing_files_are_named_before_anything_runs(tmp_path):
    (tmp_path / "t.jsonl").write_text("")
    raw = {"data": {"train": [{"path": "t.jsonl"}], "heldout": {"path": "gone.jsonl"}}, "members": {"c": {"estimator": "constant"}}}
    chosen = recipes.resolved(recipes.parse(raw, "r.yaml"), tmp_path)
    with pytest.raises(recipes.RecipeError, match="gone.jsonl") as caught:
        recipes.check_files(chosen)
    assert "t.jsonl" not in str(caught.value)


def test_each_member_stage_depends_only_on_what_it_reads():
    chosen = recipes.resolved(recipes.load(SHIPPED), SHIPPED.parents[1])
    stages = pipeline.stages(chosen)["stages"]
    assert pipeline.TRAIN_FILE in stages["member-details-gbm"]["deps"] and "index" not in stages["member-details-gbm"]["deps"]
    assert pipeline.TRAIN_FILE not in stages["member-llm"]["deps"]  # a new training subset never reruns the LLM
    assert "index" in stages["member-llm"]["deps"] and chosen.members["llm"].adapter in stages["member-llm"]["deps"]
    assert stages["member-knn"]["params"] == ["members.knn", "stack.seed"]
    assert yaml.safe_dump(pipeline.stages(chosen)["stages"]) == yaml.safe_dump(stages)  # the same recipe, the same file


def test_the_stages_get_the_store_and_the_vector_cache_as_absolute_paths(tmp_path, monkeypatch):
    """DVC runs each stage in the workspace: a relative PRICER_VECTOR_CACHE (builds/vectors.sqlite,
    as the docs write it) would otherwise name a new, empty cache inside it."""
    from app.config import Settings

    monkeypatch.chdir(tmp_path)
    env = pipeline.store_env(Settings(models_dir=Path("models"), vector_cache=Path("builds/vectors.sqlite")))
    assert env["PRICER_MODELS_DIR"] == str(tmp_path / "models")
    assert env["PRICER_VECTOR_CACHE"] == str(tmp_path / "builds" / "vectors.sqlite")
    assert "PRICER_VECTOR_CACHE" not in pipeline.store_env(Settings(models_dir=Path("models"), vector_cache=None))
