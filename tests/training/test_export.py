"""Every save is a whole adapter version: weights, config and a complete manifest, renamed into
place, named so that versions sort chronologically."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from app.adapters.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST, Manifest
from app.model.spec import PROMPT_HASH
from app.store.base import fingerprint
from app.training.data import data_hash
from app.training.export import version_name

pytestmark = pytest.mark.training


def test_every_save_is_a_complete_version(trained_run, tiny_model_dir):
    config, versions = trained_run
    assert [Manifest.read(v).steps for v in versions] == [2, 4]
    adapter_root = config.store / "adapters" / config.name
    # nothing half-built is left beside the versions
    assert sorted(p.name for p in adapter_root.iterdir()) == sorted(v.name for v in versions)
    for version in versions:
        assert {ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST} <= {p.name for p in version.iterdir()}
        assert re.fullmatch(r"\d{8}-\d{6}-s\d+", version.name)
        manifest = Manifest.read(version)
        assert manifest.name == "tiny" and manifest.version == version.name
        assert manifest.base_model == tiny_model_dir.name
        assert manifest.base_fingerprint == fingerprint(tiny_model_dir)
        assert manifest.lora_rank == 8 and manifest.lora_alpha == 16
        assert set(manifest.target_modules) == set(json.loads((version / ADAPTER_CONFIG).read_text())["target_modules"])
        assert manifest.qlora is False
        assert manifest.data_hash == data_hash(config.data)
        assert manifest.training["max_steps"] == 4 and manifest.training["train_items"] == 48
        assert manifest.command == "pytest tiny run"
        v = manifest.validation
        assert v is not None and v.n == 4 and v.mean_error >= 0 and 0 <= v.hit_rate <= 1 and v.rmsle >= 0
        assert v.data == str(config.val)
        # trained and validated under the serving spec: its prompt, and the point rule it serves with
        assert manifest.prompt_hash == PROMPT_HASH and manifest.point_rule == "median"  # SmolLM2 digits: auto = median
        assert v.decoding == "app.model.decoding:median" and set(v.by_point) == {"mean", "median", "greedy"}
        assert v.mean_error == pytest.approx(v.by_point["median"]["mean_error"], abs=0.01)
    # the manifest is the last file written into the folder
    last = versions[-1]
    assert (last / MANIFEST).stat().st_mtime_ns >= (last / ADAPTER_WEIGHTS).stat().st_mtime_ns


def test_version_names_sort_chronologically():
    early = datetime(2026, 11, 28, 2, 0, 0, tzinfo=timezone.utc)
    late = datetime(2026, 11, 28, 2, 0, 1, tzinfo=timezone.utc)
    names = [version_name(10, early), version_name(9, late), version_name(2, early)]
    assert sorted(names) == [version_name(2, early), version_name(10, early), version_name(9, late)]
    assert version_name(12, early) == "20261128-020000-s000012"


def test_a_failed_export_leaves_nothing(tmp_path):
    from app.training.export import export_version

    class Broken:
        def save_pretrained(self, folder, **_):
            folder.mkdir(parents=True)
            (folder / ADAPTER_CONFIG).write_text("{}")
            raise OSError("disk full")

    with pytest.raises(OSError):
        export_version(Broken(), tmp_path, "x", 1, {})
    assert list((tmp_path / "x").iterdir()) == []
