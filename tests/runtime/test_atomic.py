"""The one publishing helper: a folder appears whole under its name, or not at all."""

from __future__ import annotations

import pytest

from app.runtime.atomic import building


def test_a_built_folder_appears_whole_and_hidden_builds_are_cleaned(tmp_path):
    dest = tmp_path / "store" / "v1"
    with building(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".") and not dest.exists()
        (tmp / "weights").write_text("w")
    assert (dest / "weights").read_text() == "w"
    assert [p.name for p in dest.parent.iterdir()] == ["v1"]


def test_a_failed_build_leaves_nothing_and_an_existing_folder_is_kept_unless_replaced(tmp_path):
    dest = tmp_path / "v1"
    with building(dest) as tmp:
        (tmp / "a").write_text("old")
    with pytest.raises(RuntimeError), building(dest, replace=True) as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError("killed mid-build")
    assert (dest / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["v1"]
    with pytest.raises(FileExistsError), building(dest) as tmp:
        (tmp / "a").write_text("new")
    with building(dest, replace=True) as tmp:
        (tmp / "a").write_text("new")
    assert (dest / "a").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["v1"]
