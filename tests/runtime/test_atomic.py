"""The one publishing helper: a file or a folder appears whole under its name, or not at all."""

from __future__ import annotations

import pytest

from app.runtime.atomic import atomic_write_bytes, building, replacing


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


def test_files_are_written_whole_or_not_at_all(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "f.bin", b"x" * 10)
    assert (tmp_path / "a" / "f.bin").read_bytes() == b"x" * 10
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.bin"]  # no temp file left


def test_a_writer_that_needs_a_path_gets_a_hidden_temporary_no_glob_takes(tmp_path):
    path = tmp_path / "chart.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["chart.png"]
    with replacing(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".tmp"
        assert list(tmp_path.glob("*.png")) == [path]  # a reader globbing for the real files
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"  # readers see the old file until the rename
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]
