"""Saving fitted estimators without pickle: a folder with estimator.json (written last) beside
skops or JSON files. A folder is built under a temporary name and renamed into place, so a
reader never sees half of one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.estimators.base import ESTIMATOR_FILE
from app.runtime.atomic import atomic_write_text, building

MODEL_FILE = "model.skops"


class SavedEstimatorError(ValueError):
    """A saved estimator folder that cannot be loaded; the message says why."""


@contextmanager
def estimator_folder(directory: Path | str, name: str, meta: dict | None = None) -> Iterator[Path]:
    """Yield a temporary folder to write files into; on success write estimator.json and move the
    folder to `directory` (replacing an older one)."""
    with building(directory, replace=True) as tmp:
        yield tmp
        atomic_write_text(tmp / ESTIMATOR_FILE, json.dumps({"name": name, **(meta or {})}, indent=2) + "\n")


def read_meta(directory: Path | str) -> dict:
    path = Path(directory) / ESTIMATOR_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SavedEstimatorError(f"{path}: {e}") from None


def dump_model(model: object, path: Path) -> None:
    import skops.io as sio

    _forget_process_ids(model)
    sio.dump(model, path)
    _canonical_zip(path)


def _forget_process_ids(model: object) -> None:
    """A fitted text vectorizer remembers id() of its stop-word list (`_stop_words_id`, a memory address
    it only compares with in the same process); forgetting it makes the file the same in every process,
    and costs one stop-word check on first use after loading."""
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    for part in [model, *params.values()]:
        if hasattr(part, "_stop_words_id"):
            part._stop_words_id = None


def _canonical_zip(path: Path) -> None:
    """The same model as the same bytes, so a rebuilt bundle has the same hash (`pricer build`).
    skops names a file's entries and `__id__`s after id() of the objects (memory addresses) and stamps
    the time: renumber the ids in order of appearance and fix the times. A file whose layout is not
    the expected one is left as skops wrote it."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = {info.filename: src.read(info) for info in src.infolist()}
    schema = entries.pop("schema.json", b"").decode()
    pattern = re.compile(r'(?<="__id__": )\d+|(?<=")\d+(?=\.npy")')
    numbers: dict[str, str] = {}
    for found in pattern.finditer(schema):
        numbers.setdefault(found.group(0), str(len(numbers) + 1))
    renamed = {}
    for name, data in entries.items():
        stem, dot, ext = name.partition(".")
        if stem not in numbers:
            return
        renamed[numbers[stem] + dot + ext] = data
    renamed["schema.json"] = pattern.sub(lambda m: numbers[m.group(0)], schema).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(renamed):
            out.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), renamed[name], zipfile.ZIP_DEFLATED)


# Types a Pricer skops file may hold beyond skops' own defaults; anything else is refused.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.", "re.", "_codecs.")
# A partial is only a wrapper: the function it wraps is listed as a type of its own and checked like any
# other (HistGradientBoostingRegressor with categorical columns keeps a partial of sklearn's check_array).
_TRUSTED_NAMES = frozenset({"functools.partial"})


def load_model(path: Path) -> object:
    """Load a skops file, trusting only scikit-learn, numpy and scipy types."""
    import skops.io as sio

    if not path.is_file():
        raise SavedEstimatorError(f"missing model file {path}")
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES) and t not in _TRUSTED_NAMES]
    if refused:
        raise SavedEstimatorError(f"{path} holds types Pricer does not trust: {', '.join(refused)}")
    return sio.load(path, trusted=untrusted)
