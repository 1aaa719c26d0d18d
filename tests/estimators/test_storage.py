"""Saved models are the same bytes for the same model in any process (so a rebuilt bundle has the
same content digest), and still load to the same predictions."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from app.estimators.storage import dump_model

texts = ["apple banana cherry", "banana cherry date", "xylo yak zebra", "apple zebra"]
dump_model(make_pipeline(TfidfVectorizer(), Ridge()).fit(texts, [1.0, 2.0, 3.0, 4.0]), Path(sys.argv[1]) / "text.skops")
x = np.random.RandomState(0).rand(200, 3)
x[:, 0] = (x[:, 0] * 5).astype(int)
model = HistGradientBoostingRegressor(random_state=0, categorical_features=[0], max_iter=20).fit(x, x @ [1.0, 2.0, 3.0])
dump_model(model, Path(sys.argv[1]) / "trees.skops")
"""


def _digests(folder: Path) -> dict[str, str]:
    folder.mkdir()
    subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], check=True)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_the_same_model_is_the_same_bytes_in_two_processes(tmp_path):
    from app.estimators.storage import load_model

    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert first == second and set(first) == {"text.skops", "trees.skops"}
    loaded = load_model(tmp_path / "a" / "text.skops")
    assert abs(loaded.predict(["apple banana cherry"])[0] - 1.0) < 1.0
