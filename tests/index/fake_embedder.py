"""A small deterministic embedder for the index's own logic (no model): hashed words -> unit vector."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class FakeEmbedder:
    def __init__(self, name: str = "fake-words", dim: int = 64):
        self.name, self.dim = name, dim
        self.calls = 0

    def encode(self, texts, progress: bool = False, cache: bool = True) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)
