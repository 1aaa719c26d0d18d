"""The settings table of docs/operations.md, made from Settings.model_fields so that it cannot drift:
`python -m tests.deploy.settings_table` prints it, `--write` puts it into the doc; test_operations_doc
checks the doc holds exactly it."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from app.config import Settings

START = "<!-- settings-table:start (python -m tests.deploy.settings_table) -->"
END = "<!-- settings-table:end -->"


def _default(field) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        value = value.as_posix()
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{text}`" if text else '`""`'


def render() -> str:
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `PRICER_{name.upper()}` | {_default(field)} | {description} |")
    return "\n".join(lines)


DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def block() -> str:
    return f"{START}\n{render()}\n{END}"


def write(doc: Path = DOC) -> None:
    """Replace the table between the markers in the doc (atomically)."""
    import re

    from app.runtime.atomic import atomic_write_text

    text = doc.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{doc}: no settings-table markers")
    atomic_write_text(doc, pattern.sub(lambda _: block(), text))


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        write()
    else:
        print(block())
