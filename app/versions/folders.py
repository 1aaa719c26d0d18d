"""Version folders of any kind (`<root>/<name>/<version>/`): the names they may have, and a cheap
stamp of their files (a refused version is examined again when it changes)."""

from __future__ import annotations

import re
from pathlib import Path

# Names travel in URLs and in "name@version" pins: keep them to a safe alphabet.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_safe_name(value: str) -> bool:
    return bool(SAFE_NAME.match(value)) and ".." not in value


def folder_stamp(path: Path) -> tuple:
    """(file, size, mtime) of the folder's files; () when it cannot be listed (e.g. not there)."""
    stamp = []
    try:
        for file in sorted(path.iterdir()):
            info = file.stat()
            stamp.append((file.name, info.st_size, info.st_mtime_ns))
    except OSError:
        pass
    return tuple(stamp)
