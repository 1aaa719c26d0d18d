"""What a job's workers are given: the job's member deadline (not the interactive one), no secrets,
absolute paths (a worker may run in another folder, on another node)."""

from __future__ import annotations

from pathlib import Path

from app.batch.run import worker_settings
from app.config import Settings


def test_workers_get_the_jobs_member_deadline_no_secrets_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(member_timeout_s=10, batch_member_timeout_s=300, api_key="secret", models_dir="store")
    values = worker_settings(settings)
    assert values["member_timeout_s"] == 300
    assert "api_key" not in values
    assert Path(values["models_dir"]) == tmp_path / "store"
    assert Settings(**values).member_timeout_s == 300
