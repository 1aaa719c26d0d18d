"""One version's runtime record in the manager: checks passed, engine id, leases, and how it is
described to GET /v1/adapters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.adapters.store import AdapterVersion
from app.engine.base import AdapterRef


@dataclass
class Entry:
    version: AdapterVersion
    rejected: str | None = None
    checked: bool = False  # passed the static checks
    comparables: int = 0  # retrieved neighbours in its prompts (from its prompt hash, at the checks)
    smoked: dict | None = None  # passed the smoke check (result)
    ref: AdapterRef | None = None  # loaded in the engine under this id
    leases: int = 0
    files: dict | None = None  # {name: [size, sha256]} when validated (app.adapters.guard)
    failures: int = 0  # estimates failed in a row
    last_used: int = 0
    load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def describe(entry: Entry, active: AdapterRef | None) -> dict:
    v, m = entry.version, entry.version.manifest
    loaded = entry.ref is not None
    status = "rejected" if entry.rejected else "active" if loaded and entry.ref == active else "loaded" if loaded else "available"
    return {"name": v.name, "version": v.version, "status": status, "reason": entry.rejected,
            "validation": m.validation.model_dump() if m and m.validation else None,
            "lora_rank": m.lora_rank if m else None, "base_model": m.base_model if m else None,
            "created_at": m.created_at.isoformat() if m else None, "smoke": entry.smoked, "in_flight": entry.leases,
            "comparables": entry.comparables if entry.checked else None}  # neighbours in its prompts
