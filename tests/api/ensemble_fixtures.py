"""A small real ensemble bundle in a test store: `bow-ridge` (a skops estimator fitted on
make_items), `constant`, and the external `llm` member (the fake engine answers for it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.ensemble.bundle import sha256_file, write_bundle
from app.ensemble.fit import fit_stacks
from app.estimators.base import EstimatorOptions, create
from tests.factories import make_items

MEMBERS = ("bow-ridge", "constant", "llm")


def write_test_bundle(store: Path, version: str = "20260101-000000", external: dict | None = None) -> Path:
    """models/ensembles/pricer-ensemble/<version>/ under `store`, with a stack for every subset:
    bow-ridge and constant saved, and `external` ({name: manifest row}; default: the `llm` member)."""
    work = store / ".work"
    items = make_items(60)
    saved = {}
    for name in ("bow-ridge", "constant"):
        estimator = create(name, EstimatorOptions(seed=0))
        estimator.fit(items)
        estimator.save(work / name)
        saved[name] = work / name
    if external is None:
        ref = store / "refs" / "llm"  # the llm member's reference folder (a real bundle points at the adapter)
        ref.mkdir(parents=True, exist_ok=True)
        (ref / "manifest.json").write_text('{"version": "v1"}\n')
        external = {"llm": {"kind": "external", "ref": "refs/llm", "file": "manifest.json", "sha256": sha256_file(ref / "manifest.json")}}
    names = ("bow-ridge", "constant", *external)
    rng = np.random.default_rng(0)
    truths = np.exp(rng.normal(4.5, 1.0, 60))
    answers = {m: list(truths * np.exp(rng.normal(0, 0.3 + 0.2 * i, 60))) for i, m in enumerate(names)}
    manifest = {"name": "pricer-ensemble", "version": version,
                "members": [{"name": "bow-ridge"}, {"name": "constant"}, *({"name": n} | row for n, row in external.items())]}
    return write_bundle(store / "ensembles" / "pricer-ensemble" / version, fit_stacks(answers, list(truths), 0.8, 5, 0),
                        manifest, saved)
