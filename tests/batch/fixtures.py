"""A fake-engine store for batch tests (a base folder and a real ensemble bundle), catalog files
built from make_items, and the settings a job and a service share."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.api.ensemble_fixtures import write_test_bundle
from tests.factories import make_items


def make_store(root: Path) -> Path:
    base = root / "base" / "fake"
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.json").write_text("{}")
    write_test_bundle(root)
    return root


def settings_values(store: Path) -> dict:
    return dict(models_dir=store, base_model=str(store / "base" / "fake"), watch_adapters=False,
                default_adapter=None, engine="fake", log_json=False)


def job_env(store: Path, **extra: str) -> dict:
    """The environment of a `pricer price` subprocess on that store (the fake engine)."""
    env = dict(os.environ, PRICER_ENGINE="fake", PRICER_MODELS_DIR=str(store), PRICER_BASE_MODEL=str(store / "base" / "fake"),
               PRICER_DEFAULT_ADAPTER="", PRICER_WATCH_ADAPTERS="false", PRICER_LOG_JSON="false",
               RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")
    env.update(extra)
    return env


def catalog_rows(n: int, seed: int = 0) -> list[dict]:
    """Rows with the API's fields: details and features on some, ids 1000+."""
    rows = []
    for i, item in enumerate(make_items(n, seed=seed)):
        row = {"id": 1000 + i, "title": item.title, "description": item.text.partition("\n")[2], "category": item.category}
        if i % 3 == 0:
            row["features"] = ["sturdy", f"size {i}"]
        if i % 4 == 0:
            row["details"] = {"Brand": "Acme", "Best Sellers Rank": {"Tools": 100 + i}}
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
