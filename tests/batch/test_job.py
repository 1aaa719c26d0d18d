"""The output folder's identity: another job's folder is refused naming the difference."""

from __future__ import annotations

import pytest

from app.batch import job


def identity(**changes) -> dict:
    return {"input_sha256": "aa", "id_column": "id", "format": "parquet", "comparables": 0, "part_rows": 256,
            "ensemble": "pricer-ensemble@1", **changes}


def test_a_new_folder_and_the_same_job_are_accepted(tmp_path):
    assert job.check_folder(tmp_path / "out", identity()) is None
    job.write_json(tmp_path / "out" / job.MANIFEST, {**identity(), "status": "running"})
    assert job.check_folder(tmp_path / "out", identity())["status"] == "running"


def test_another_jobs_folder_is_refused_naming_each_difference(tmp_path):
    job.write_json(tmp_path / job.MANIFEST, {**identity(), "adapter": "a@1"})
    with pytest.raises(job.JobMismatch, match="input_sha256: 'aa' here, 'bb' now; ensemble: 'pricer-ensemble@1' here, 'pricer-ensemble@2' now"):
        job.check_folder(tmp_path, identity(input_sha256="bb", ensemble="pricer-ensemble@2"))
    with pytest.raises(job.JobMismatch, match="adapter: 'a@1' here, 'a@2' now"):
        job.check_folder(tmp_path, {**identity(), "adapter": "a@2"})


def test_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(job.JobMismatch, match="holds no job.json \\(notes.txt\\)"):
        job.check_folder(tmp_path, identity())
