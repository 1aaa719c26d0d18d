"""The recipe's options for items that say little (issue 30): stack.title_rows, stack.richness,
stack.mondrian and a member's augment: validated by name, left out of params.yaml at their defaults
(a recipe without them builds the same stages and bundle), rendered as the stages' outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.build import pipeline
from app.build import recipe as recipes
from app.build.steps import training_items
from app.model.item_files import write_items
from app.model.richness import TITLE, richness
from tests.factories import make_items

SHIPPED = Path(__file__).parents[2] / "recipes" / "shipped.yaml"
ON = ["stack.title_rows=true", "stack.richness=interactions", "stack.mondrian=true", "members.embed-gbm.augment=titles"]


def test_the_options_default_off_and_stay_out_of_params_yaml():
    plain = recipes.load(SHIPPED)
    assert not plain.stack.uses_rows and plain.members["embed-gbm"].augment == "none"
    dumped = plain.model_dump(mode="json")
    assert set(dumped["stack"]) == {"folds", "seed", "level"} and "augment" not in dumped["members"]["embed-gbm"]
    stages = pipeline.stages(recipes.resolved(plain, SHIPPED.parents[1]))["stages"]
    assert stages["member-knn"]["params"] == ["members.knn", "stack.seed"]
    assert not any(out.endswith(".titles.jsonl") for stage in stages.values() for out in stage.get("outs", []))


def test_the_options_on_are_dumped_and_rendered():
    chosen = recipes.resolved(recipes.load(SHIPPED, ON), SHIPPED.parents[1])
    dumped = chosen.model_dump(mode="json")
    assert dumped["stack"] == {"folds": 5, "seed": 42, "level": 0.8, "title_rows": True, "richness": "interactions",
                                "mondrian": True}
    assert dumped["members"]["embed-gbm"]["augment"] == "titles"
    assert recipes.Recipe.model_validate(dumped) == chosen  # params.yaml reads back as the same recipe
    stages = pipeline.stages(chosen)["stages"]
    assert "answers/knn.titles.jsonl" in stages["member-knn"]["outs"] and "stack.title_rows" in stages["member-knn"]["params"]
    assert "answers/llm.titles.jsonl" in stages["evaluate"]["deps"]


@pytest.mark.parametrize("override, message", [
    ("stack.title_row=true", "stack.title_row: Extra inputs are not permitted"),
    ("stack.richness=columns", "stack.richness: Input should be 'none', 'indicators', 'interactions' or 'titles-apart'"),
    ("stack.mondrian=maybe", "stack.mondrian: Input should be a valid boolean"),
    ("members.embed-gbm.augment=descriptions", "members.embed-gbm.augment: Input should be 'none' or 'titles'"),
    ("members.knn.augment=titles", "`augment` is for members fitted in the build, not 'knn'"),
    ("members.embed-gbm.augmentation=titles", "members.embed-gbm.augmentation: Extra inputs are not permitted"),
])
def test_an_unknown_or_bad_option_is_refused_by_name(override, message):
    with pytest.raises(recipes.RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        recipes.load(SHIPPED, [override])


def test_augment_titles_fits_on_each_item_and_its_title_alone(tmp_path):
    items = make_items(12)
    write_items(tmp_path / "data" / "train.jsonl", items)
    plain = recipes.Member(estimator="bow-ridge")
    assert training_items(tmp_path, "m", plain) == items
    doubled = training_items(tmp_path, "m", recipes.Member(estimator="bow-ridge", augment="titles"))
    assert doubled[:12] == items and doubled[12:] == [i.title_only() for i in items]
    assert all(richness(i) == TITLE for i in doubled[12:])
