"""The adapter shipped in models/ stays servable under the serving spec: its manifest records the
served prompt's hash, and its validation is scored under the point rule the service answers with."""

from __future__ import annotations

from pathlib import Path

from app.adapters.store import scan
from app.adapters.validation import check_prompt
from app.spec import PROMPT_HASH

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "adapters"


def test_the_shipped_version_records_the_served_prompt_and_point_rule():
    [version] = [v for v in scan(SHIPPED) if v.name == "pricer-smollm2"]
    assert version.problem is None
    check_prompt(version.manifest.prompt_hash)  # raises AdapterRejected otherwise
    assert version.manifest.prompt_hash == PROMPT_HASH
    assert version.manifest.point_rule == "median"  # SmolLM2's digit tokenizer: point_rule=auto serves the median
    assert version.served_error("median") == version.manifest.validation.by_point["median"]["mean_error"]
