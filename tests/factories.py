"""Small synthetic data for tests: items whose text says something about their price."""

from __future__ import annotations

import random

from app.model.items import Item
from app.runtime.atomic import building

_KINDS = [
    ("USB cable", 8.0), ("phone case", 15.0), ("desk lamp", 35.0), ("office chair", 180.0),
    ("car battery", 120.0), ("cordless drill", 95.0), ("espresso machine", 450.0), ("laptop stand", 40.0),
    ("refrigerator water filter", 30.0), ("dishwasher pump", 85.0),
]
_CATEGORIES = ["Electronics", "Automotive", "Appliances", "Tools_and_Home_Improvement", None]


def make_items(n: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        kind, base = _KINDS[i % len(_KINDS)]
        price = round(base * rng.uniform(0.7, 1.4), 2)
        quality = "premium heavy duty" if price > base else "basic compact"
        title = f"Acme {quality} {kind} model {i}"
        body = (
            f"This {quality} {kind} is built for everyday use. It weighs {rng.randint(1, 40)} pounds "
            f"and measures {rng.randint(2, 30)} x {rng.randint(2, 30)} inches. Brand Acme."
        )
        items.append(Item(title=title, category=_CATEGORIES[i % len(_CATEGORIES)], price=price, text=f"{title}\n{body}"))
    return items


def make_lora_adapter(
    base_dir,
    store_dir,
    name: str = "test-adapter",
    version: str = "20260101-000000-s1",
    rank: int = 8,
    seed: int = 0,
    weight_std: float = 0.3,
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    mean_error: float | None = 100.0,
    write_manifest: bool = True,
    **manifest_fields,
):
    """A real peft LoRA adapter for the model in `base_dir`, written as a store version
    `store_dir/<name>/<version>/`. `weight_std` is large on purpose: tiny random LoRA weights leave
    greedy outputs unchanged, and tests want an adapter that visibly changes them."""
    from pathlib import Path

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir, store_dir = Path(base_dir), Path(store_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), lora_dropout=0.0, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for param_name, param in peft_model.named_parameters():
            if "lora_" in param_name:
                param.normal_(0.0, weight_std)
    final = store_dir / name / version
    with building(final, replace=True) as tmp:
        peft_model.save_pretrained(tmp, safe_serialization=True)
        if write_manifest:
            write_test_manifest(tmp, base_dir, name, version, rank, targets, mean_error, **manifest_fields)
    return final


def write_test_manifest(folder, base_dir, name, version, rank=8, targets=("q_proj",), mean_error=100.0, **manifest_fields):
    """A manifest as training writes it (served prompt hash and point rule); fields override."""
    from app.adapters.manifest import Manifest, ValidationScores
    from app.model.spec import PROMPT_HASH
    from app.store.base import fingerprint

    fields = dict(
        name=name,
        version=version,
        base_model=base_dir.name,
        base_fingerprint=fingerprint(base_dir),
        lora_rank=rank,
        lora_alpha=2 * rank,
        target_modules=list(targets),
        data_hash="sha256:test",
        prompt_hash=PROMPT_HASH,
        point_rule="median",
        steps=1,
        validation=None if mean_error is None else ValidationScores(n=4, mean_error=mean_error, rmsle=1.0, hit_rate=0.5),
    )
    fields.update(manifest_fields)
    Manifest(**fields).write(folder)
