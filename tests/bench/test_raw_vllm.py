"""`pricer bench load --compare-vllm`'s raw vLLM server (app.bench.raw_vllm) for each adapter mode, without
starting it: lora serves the base with --lora-modules as before; merged serves the store's merged folder
as the model (the base's tokenizer, no LoRA flags, no adapter named in the requests), with the merged
engine's own arguments, so vLLM compiles as the service's merged engine does."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bench import engine_mode, raw_offline
from app.bench.load import _raw_vllm_bodies
from app.bench.raw_vllm import server_command, served_model
from tests.bench.specs import BASE, bare_spec, merged_engine_kwargs

LORA_FLAGS = {"--enable-lora", "--max-lora-rank", "--max-loras", "--lora-modules"}
MERGED = Path("/store/merged/pricer/v1")
ADAPTER = Path("/store/adapters/pricer/v1")


def flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


@pytest.mark.parametrize("settings_mode", ["lora", "merged"])
def test_merged_mode_serves_the_merged_folder_without_lora(settings_mode):
    spec = bare_spec(adapter_mode=settings_mode)
    command = server_command(spec, BASE, 8123, None, "merged", MERGED)
    assert not LORA_FLAGS & set(command) and "--enforce-eager" not in command
    assert flag(command, "--model") == str(MERGED) and flag(command, "--tokenizer") == str(BASE)
    # every engine flag is the merged engine's own argument, for the merged folder
    expected = merged_engine_kwargs(spec, MERGED)
    assert flag(command, "--max-num-seqs") == str(expected["max_num_seqs"]) and flag(command, "--dtype") == expected["dtype"]
    assert flag(command, "--served-model-name") == served_model(spec, BASE, None, "merged", MERGED) == MERGED.name


def test_merged_mode_without_an_adapter_serves_the_base_compiled():
    spec = bare_spec(adapter_mode="merged")
    command = server_command(spec, BASE, 8123, None, "merged", None)
    assert flag(command, "--model") == str(BASE) and "--tokenizer" not in command and not LORA_FLAGS & set(command)
    assert served_model(spec, BASE, None, "merged") == BASE.name


@pytest.mark.parametrize("settings_mode", ["lora", "merged"])
def test_lora_mode_is_as_before(settings_mode):
    spec = bare_spec(adapter_mode=settings_mode)
    command = server_command(spec, BASE, 8123, ("pricer-v1", ADAPTER))
    assert flag(command, "--model") == str(BASE) and "--enable-lora" in command
    assert flag(command, "--lora-modules") == f"pricer-v1={ADAPTER}" and "--tokenizer" not in command
    assert served_model(spec, BASE, ("pricer-v1", ADAPTER)) == "pricer-v1"


@pytest.mark.parametrize("mode", ["lora", "merged"])
def test_the_request_bodies_name_what_the_server_serves(monkeypatch, mode):
    spec = bare_spec(adapter_mode=mode)
    spec.item_prompts = lambda texts, strict=False, comparables=None: [f"Q {t}" for t in texts]
    monkeypatch.setattr(raw_offline, "served_adapter", lambda settings, label, spec=None: (ADAPTER, 0))
    monkeypatch.setattr(engine_mode, "merged_weights", lambda settings, model_dir, label: MERGED)
    bodies = [{"title": f"Item {i}", "description": "A thing"} for i in range(3)]
    raw_bodies, served = _raw_vllm_bodies(spec, BASE, bodies, {"adapter": "pricer@v1"}, 2)
    assert len(raw_bodies) == 2 and served["mode"] == mode
    if mode == "merged":
        assert served["adapter"] is None and served["weights"] == MERGED
        assert {b["model"] for b in raw_bodies} == {MERGED.name}  # no adapter in the requests
    else:
        assert served["adapter"] == ("pricer-v1", ADAPTER) and served["weights"] is None
        assert {b["model"] for b in raw_bodies} == {"pricer-v1"}
