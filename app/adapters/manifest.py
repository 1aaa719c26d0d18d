"""The adapter manifest: the last file written into a version folder, and the proof it is whole.

A version folder `models/adapters/<name>/<version>/` holds adapter_config.json,
adapter_model.safetensors and manifest.json. Training builds the folder under a temporary name
and renames it into place with the manifest already inside, so readers never see half a version;
a folder without a manifest is not a version.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.runtime.atomic import atomic_write_text

MANIFEST = "manifest.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class ValidationScores(BaseModel):
    """Scores on `n` validation items, computed as app.evaluation.score does."""

    model_config = ConfigDict(extra="allow")

    n: int = Field(ge=0)
    mean_error: float
    rmsle: float
    hit_rate: float
    data: str | None = None  # which file the items came from


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    base_model: str  # the base's name (e.g. smollm2-135m) or folder
    base_fingerprint: str  # app.store.base.fingerprint of the base it was trained on
    lora_rank: int = Field(ge=1)
    lora_alpha: float
    target_modules: list[str]
    qlora: bool = False
    data_hash: str  # sha256 of the training data
    # The serving spec it was trained and validated under (app.model.spec): the manager refuses a version
    # whose prompt hash is not the served one; `validation` was scored with `point_rule`.
    prompt_hash: str | None = None
    point_rule: str | None = None
    steps: int = Field(ge=0)
    validation: ValidationScores | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    training: dict = Field(default_factory=dict)  # the arguments the run was made with
    command: str | None = None  # how to reproduce it

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Raises FileNotFoundError, or ValueError with the reason for a bad manifest."""
        path = Path(folder) / MANIFEST
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
