"""The compute dtype follows the CPU's instructions: bf16 only where it is native."""

import pytest

from app.config import Settings
from app.model.hardware import choose_dtype, compute_block, kind_from_flags, parse_cpuinfo

# Flags as /proc/cpuinfo prints them (abridged) on the two kinds of machine the project runs on.
EPYC_AVX2 = "fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2 sha_ni"
EPYC_AVX512_BF16 = EPYC_AVX2 + " avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
SKYLAKE_AVX512 = EPYC_AVX2 + " avx512f avx512dq avx512cd avx512bw avx512vl"
SAPPHIRE_RAPIDS = SKYLAKE_AVX512 + " avx512_bf16 amx_bf16 amx_tile amx_int8"
GRAVITON3 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm sve bf16 i8mm"
GRAVITON2 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm"


@pytest.mark.parametrize("flags, isa, dtype", [
    (EPYC_AVX2, "avx2", "float32"),
    (SKYLAKE_AVX512, "avx512", "float32"),  # AVX-512 without its bf16 extension: still emulated
    (EPYC_AVX512_BF16, "avx512", "bfloat16"),
    (SAPPHIRE_RAPIDS, "amx", "bfloat16"),
    (GRAVITON3, "neon", "bfloat16"),
    (GRAVITON2, "neon", "float32"),
    ("", "basic", "float32"),
])
def test_the_cpu_computes_in_bf16_only_with_native_bf16(flags, isa, dtype):
    cpu = kind_from_flags(set(flags.split()), "test cpu", 2)
    assert cpu.isa == isa
    assert choose_dtype("cpu", cpu).dtype == dtype


def test_a_gpu_keeps_bf16_whatever_the_host_cpu():
    assert choose_dtype("cuda", kind_from_flags(set(EPYC_AVX2.split()))).dtype == "bfloat16"


def test_an_explicit_dtype_wins_and_says_when_it_is_slow():
    avx2 = kind_from_flags(set(EPYC_AVX2.split()))
    forced = choose_dtype("cpu", avx2, "bfloat16")
    assert forced.dtype == "bfloat16" and "slow" in forced.reason
    assert "slow" not in choose_dtype("cpu", kind_from_flags(set(EPYC_AVX512_BF16.split())), "bfloat16").reason
    assert choose_dtype("cpu", avx2, "float32").dtype == "float32"
    with pytest.raises(ValueError, match="unknown dtype"):
        choose_dtype("cpu", avx2, "int8")


def test_cpuinfo_is_parsed_for_x86_and_arm():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: other\n"
    assert parse_cpuinfo(x86) == ("AMD EPYC 7B13", frozenset({"fpu", "avx2", "fma"}))
    arm = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd bf16\nCPU part\t: 0xd40\n"
    assert parse_cpuinfo(arm)[1] == frozenset({"fp", "asimd", "bf16"})


def test_the_engine_and_the_readiness_block_use_the_chosen_dtype(monkeypatch):
    import app.model.hardware as hardware
    from app.model.spec import ServingSpec

    monkeypatch.setattr(hardware, "this_cpu", lambda: kind_from_flags(set(EPYC_AVX2.split()), "avx2 box", 2))

    settings = Settings(device="cpu")
    spec = ServingSpec.__new__(ServingSpec)  # engine arguments need only the settings, not a tokenizer
    spec.settings = settings
    assert spec.engine_kwargs("models/base/x")["dtype"] == "float32"
    assert compute_block(settings)["dtype"] == "float32"
    assert compute_block(settings)["cpu"]["isa"] == "avx2"
    assert ServingSpec.engine_kwargs(spec, "models/base/x", device="cuda")["dtype"] == "bfloat16"
    spec.settings = Settings(device="cpu", dtype="bfloat16")
    assert spec.engine_kwargs("models/base/x")["dtype"] == "bfloat16"


def test_training_computes_in_bf16_only_where_the_machine_does(monkeypatch):
    import app.model.hardware as hardware
    from app.training.config import TrainConfig
    from app.training.run import use_bf16

    monkeypatch.setattr(hardware, "this_cpu", lambda: kind_from_flags(set(EPYC_AVX2.split())))
    assert not use_bf16(TrainConfig(), Settings(device="cpu"))
    assert use_bf16(TrainConfig(), Settings(device="cpu", dtype="bfloat16"))
    monkeypatch.setattr(hardware, "this_cpu", lambda: kind_from_flags(set(EPYC_AVX512_BF16.split())))
    assert use_bf16(TrainConfig(), Settings(device="cpu"))
    assert not use_bf16(TrainConfig(bf16=False), Settings(device="cpu"))


def test_tcmalloc_is_preloaded_for_the_cpu_engine_where_installed(tmp_path, monkeypatch):
    import app.model.hardware as hardware
    from app.model.spec import ServingSpec

    library = tmp_path / "libtcmalloc_minimal.so.4"
    spec = ServingSpec.__new__(ServingSpec)
    spec.settings = Settings(device="cpu")
    monkeypatch.setattr(hardware, "TCMALLOC_PATHS", (str(library),))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert "LD_PRELOAD" not in spec.engine_env()  # not installed: nothing to preload
    library.write_bytes(b"")
    assert spec.engine_env()["LD_PRELOAD"] == str(library)
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    assert spec.engine_env()["LD_PRELOAD"] == f"{library}:/opt/other.so"
    monkeypatch.setenv("LD_PRELOAD", f"/x/{library.name}")
    assert "LD_PRELOAD" not in spec.engine_env()  # already there
    spec.settings = Settings(device="cpu", cpu_preload=False)
    monkeypatch.delenv("LD_PRELOAD")
    assert "LD_PRELOAD" not in spec.engine_env()
    spec.settings = Settings(device="cuda")
    assert "LD_PRELOAD" not in spec.engine_env()


def test_a_onednn_isa_cap_below_bf16_counts_as_no_native_bf16():
    from app.model.hardware import capped_flags

    flags = frozenset(SAPPHIRE_RAPIDS.split())
    avx2 = kind_from_flags(capped_flags(flags, "AVX2"))
    assert (avx2.isa, avx2.native_bf16) == ("avx2", False)
    assert choose_dtype("cpu", avx2).dtype == "float32"
    vnni = kind_from_flags(capped_flags(flags, "avx512_core_vnni"))
    assert (vnni.isa, vnni.native_bf16) == ("avx512", False)
    assert capped_flags(flags, "AVX512_CORE_AMX") == flags and capped_flags(flags, None) == flags
