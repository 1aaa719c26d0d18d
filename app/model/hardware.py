"""What this machine computes fast: its CPU's instruction sets, and the compute dtype that follows.

Without native bf16 instructions (x86 `avx512_bf16` or `amx_bf16`, Arm `bf16`) torch and vLLM
emulate bf16 on the CPU: a matmul measured on an AVX2-only AMD EPYC ran at 0.8 GFLOP/s in bf16
against 31.7 in fp32 (docs/inference.md). So the CPU computes in bf16 only where it has those
instructions and in fp32 everywhere else; a GPU keeps bf16. `PRICER_DTYPE` overrides the choice.
Every stage that runs the model (vLLM, llm-head, training, validation) asks `compute_dtype`.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 (AVX-512 BF16, AMX), Arm (FEAT_BF16)
DTYPES = ("bfloat16", "float16", "float32")
# tcmalloc, as vLLM's CPU guide asks for (Debian/Ubuntu: libtcmalloc-minimal4): +20% requests/s
# for the LoRA-served SmolLM2 here (docs/inference.md, "Tuning the CPU engine").
TCMALLOC_PATHS = tuple(f"/usr/lib/{arch}-linux-gnu/libtcmalloc_minimal.so.4" for arch in ("x86_64", "aarch64")) + (
    "/usr/lib64/libtcmalloc_minimal.so.4", "/usr/lib/libtcmalloc_minimal.so.4")
# The widest vector instructions a CPU has, widest first: the ISA and the flags that show it.
ISA_FLAGS = (("amx", {"amx_bf16", "amx_tile"}), ("avx512", {"avx512f"}), ("avx2", {"avx2"}), ("neon", {"asimd", "neon"}))


@dataclass(frozen=True)
class CpuKind:
    """The CPU as the dtype choice and the speed figures name it."""

    model: str
    isa: str  # amx, avx512, avx2, neon or basic: the widest vector instructions it has
    native_bf16: bool
    cores: int
    flags: frozenset[str]

    def describe(self) -> dict:
        """A small JSON-able summary (no flag list): for /readyz, `pricer model info`, manifests, benches."""
        out = asdict(self)
        del out["flags"]
        return out

    def label(self) -> str:
        return f"{self.model} ({self.isa}, {'native' if self.native_bf16 else 'no'} bf16, {self.cores} cores)"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The model name and the flags of /proc/cpuinfo's first processor (x86 "flags", Arm "Features")."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return model, flags


def kind_from_flags(flags: frozenset[str] | set[str], model: str = "", cores: int | None = None) -> CpuKind:
    flags = frozenset(flags)
    isa = next((isa for isa, marks in ISA_FLAGS if flags & marks), "basic")
    return CpuKind(model=model or platform.processor() or platform.machine(), isa=isa,
                   native_bf16=bool(flags & NATIVE_BF16_FLAGS), cores=cores or os.cpu_count() or 1, flags=flags)


# oneDNN (torch's bf16 matmul) capped below its bf16 level by ONEDNN_MAX_CPU_ISA computes bf16 as an
# AVX2 machine does (0.7 GFLOP/s measured here with the AVX2 cap, 0.8 on a real AVX2 EPYC): those caps
# drop the native-bf16 flags, and the AVX2 ones AVX-512 too, so the dtype choice follows the cap.
_CAPS_WITHOUT_BF16 = {"SSE41": "avx512", "AVX": "avx512", "AVX2": "avx512", "AVX2_VNNI": "avx512",
                      "AVX2_VNNI_2": "avx512", "AVX512_CORE": "", "AVX512_CORE_VNNI": ""}


def capped_flags(flags: frozenset[str], cap: str | None) -> frozenset[str]:
    """`flags` without what an ONEDNN_MAX_CPU_ISA cap keeps oneDNN from using."""
    cap = (cap or "").upper()
    if cap not in _CAPS_WITHOUT_BF16:
        return flags
    dropped = {f for f in flags if f in NATIVE_BF16_FLAGS or f.startswith("amx")}
    if _CAPS_WITHOUT_BF16[cap]:
        dropped |= {f for f in flags if f.startswith("avx512")}
    return flags - dropped


@lru_cache(maxsize=1)
def this_cpu() -> CpuKind:
    """This machine's CPU (read once; a machine without /proc/cpuinfo counts as having no bf16), as
    oneDNN may use it (ONEDNN_MAX_CPU_ISA)."""
    try:
        model, flags = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:
        model, flags = "", frozenset()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return kind_from_flags(capped_flags(flags, os.environ.get("ONEDNN_MAX_CPU_ISA")), model, cores)


@dataclass(frozen=True)
class DtypeChoice:
    dtype: str  # one of DTYPES
    reason: str


def choose_dtype(device: str, cpu: CpuKind, requested: str = "auto") -> DtypeChoice:
    """The compute dtype for `device` ("cpu" or "cuda") on this CPU; `requested` other than auto wins."""
    if requested != "auto":
        if requested not in DTYPES:
            raise ValueError(f"unknown dtype {requested!r}: auto or one of {', '.join(DTYPES)}")
        slow = device == "cpu" and requested != "float32" and not cpu.native_bf16
        return DtypeChoice(requested, "PRICER_DTYPE" + (" (slow here: this CPU has no native bf16/fp16 matmul)" if slow else ""))
    if device == "cuda":
        return DtypeChoice("bfloat16", "GPU")
    if cpu.native_bf16:
        return DtypeChoice("bfloat16", f"CPU with native bf16 ({cpu.isa})")
    return DtypeChoice("float32", f"CPU without native bf16 ({cpu.isa}): bf16 would be emulated, about 40x slower")

def resolve_device(settings) -> str:
    if settings.device != "auto":
        return settings.device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch comes with vllm
        return "cpu"


def compute_dtype(settings, device: str | None = None) -> DtypeChoice:
    """The dtype every stage computes in, from Settings (PRICER_DTYPE, PRICER_DEVICE) and this machine."""
    return choose_dtype(device or resolve_device(settings), this_cpu(), settings.dtype)


def compute_block(settings, device: str | None = None) -> dict:
    """The facts behind the choice, for /readyz, `pricer model info` and the adapter manifest."""
    device = device or resolve_device(settings)
    choice = compute_dtype(settings, device)
    return {"device": device, "dtype": choice.dtype, "dtype_reason": choice.reason, "cpu": this_cpu().describe()}


def tcmalloc_path() -> str | None:
    """This machine's tcmalloc library, if installed."""
    return next((path for path in TCMALLOC_PATHS if Path(path).is_file()), None)


def preload_env(current: str | None) -> dict[str, str]:
    """LD_PRELOAD for vLLM's engine process with tcmalloc first (set before the engine core is
    spawned, it applies to that process only); {} when tcmalloc is missing or already there."""
    path = tcmalloc_path()
    if path is None or "tcmalloc" in (current or ""):
        return {}
    return {"LD_PRELOAD": ":".join(p for p in (path, current) if p)}
