"""The one way anything is published into the model store (or any folder readers watch): files are
written under a temporary name and renamed (`replacing` hands a writer that needs a path, such as
a chart or a Parquet writer, the temporary name); folders are built in a hidden folder beside their
final place and renamed into place, so a reader sees either nothing or the whole thing. Scanners
skip names that start with "." (the hidden build folders)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """`with replacing(path) as tmp:` write the file `tmp` (a hidden name beside `path` ending in
    .tmp, so that no glob for the real files' extension takes it: name the format to a writer that
    guesses it from the extension); on success it is made durable and renamed to `path`, so readers
    see the old file or the new one, never half; on any error it is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users (a trainer container) must read it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it and a rename (see `replacing`)."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write `text` (UTF-8) to `path`: readers never see half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a crash after it cannot bring the old name back). Some
    file systems cannot fsync a folder: then the rename is as durable as they make it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def hidden_folder(dest: Path) -> Path:
    """A fresh, empty hidden build folder beside `dest` (same file system, so the rename is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))


def publish(tmp: Path, dest: Path, replace: bool = False) -> Path:
    """Rename the built folder `tmp` to `dest`. An existing `dest` is replaced only when `replace`
    (moved aside first, so there is never a moment with a half-removed folder at `dest`);
    otherwise FileExistsError."""
    tmp.chmod(0o755)  # mkdtemp makes 0700; the service may run as another user
    if dest.exists() or dest.is_symlink():
        if not replace:
            raise FileExistsError(f"{dest} exists")
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old / dest.name)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    return dest


@contextmanager
def building(dest: Path | str, replace: bool = False) -> Iterator[Path]:
    """`with building(dest) as tmp:` write files into `tmp`; on success it is renamed to `dest`
    (see `publish`), on any error it is removed and `dest` is untouched."""
    dest = Path(dest)
    tmp = hidden_folder(dest)
    try:
        yield tmp
        publish(tmp, dest, replace=replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
