"""`pricer build` with the stack's richness options on (issue 30), end to end on tiny data with real
DVC: the members answer the held-out items' titles too, one learns from titles, the stack is fitted and
scored on both, and the bundle serves a title with the title interval."""

from __future__ import annotations

import json
from pathlib import Path

from app.ensemble.bundle import Bundle
from tests.build.builds import build, recipe_file, summary
from tests.build.test_distributed import local_ray  # noqa: F401 - the fixture


def test_a_build_with_title_rows_mondrian_and_richness_columns(folder):
    store, ws = folder / "store", folder / "ws"
    members = {"constant": {"estimator": "constant"}, "bow-ridge": {"estimator": "bow-ridge", "augment": "titles"},
               "features-lr": {"estimator": "features-lr"}}
    stack = {"folds": 5, "seed": 42, "level": 0.8, "title_rows": True, "richness": "interactions", "mondrian": True}
    done = build(recipe_file(folder, members, stack=stack), ws, store, "--promote", "always")
    result = summary(done)
    assert "as titles only: $" in done.stdout  # the nested titles figure is printed beside the full one
    for name in members:
        assert len((ws / "answers" / f"{name}.titles.jsonl").read_text().splitlines()) == 60
    metrics = json.loads((ws / "evaluation" / "metrics.json").read_text())
    assert metrics["items"] == 60 and metrics["titles"]["items"] == 60
    assert set(metrics["by_richness"]) == {"short", "title"}  # make_items' bodies are under 30 words
    for part in (metrics["stack"], metrics["titles"]["stack"]):
        assert part["n"] == 60 and 0 <= part["coverage"] <= 1
    assert len((ws / "evaluation" / "oof.jsonl").read_text().splitlines()) == 60  # what promotion compares
    manifest = json.loads((Path(result["bundle"]) / "manifest.json").read_text())
    richness = manifest["richness"]
    assert richness["rows"] == 120 and richness["copies"] == 60 and richness["features"] == "interactions"
    assert richness["conformal"]["title"]["rows"] == 60 and not richness["conformal"]["title"]["pooled"]
    assert richness["conformal"]["full"] == {**richness["conformal"]["full"], "rows": 0, "pooled": True}
    assert next(r for r in manifest["members"] if r["name"] == "bow-ridge")["augment"] == "titles"
    assert "titles" in manifest["cross_validated"]
    ensemble = Bundle.load(result["bundle"], store).ensemble
    prices = {"constant": 50.0, "bow-ridge": 80.0, "features-lr": 70.0}
    title, short = ensemble.combine_full(prices, "title"), ensemble.combine_full(prices, "short")
    assert title.offsets == tuple(richness["conformal"]["title"]["offsets"]) and title.price != short.price


def test_title_rows_and_augment_on_ray_are_what_the_local_step_does(local_ray, tmp_path):
    """The distributed path fits on the same augmented items and answers the same title copies."""
    from app.build import steps
    from app.config import Settings
    from tests.build.test_distributed import files, workspace

    settings = Settings(models_dir=tmp_path / "store")
    members = {"bow-ridge": {"estimator": "bow-ridge", "augment": "titles"}}
    stack = {"stack": {"title_rows": True}}
    here, there = workspace(tmp_path, "here", "never", members, **stack), workspace(tmp_path, "there", "always", members, **stack)
    assert steps.member_step(here, "bow-ridge", settings) == steps.member_step(there, "bow-ridge", settings) == 40
    assert files(there / "members") == files(here / "members")
    assert files(there / "answers") == files(here / "answers") and len(files(here / "answers")) == 2
