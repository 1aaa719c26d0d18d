"""`pricer compare A.jsonl B.jsonl`: two per-item reports (from `pricer evaluate --report`) on the
same items, the mean difference of their absolute errors and its paired bootstrap interval."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail
from app.evaluation.bootstrap import LEVEL, RESAMPLES, SEED, PairedDifference, paired_difference


class ReportError(ValueError):
    """A report that cannot be read, or two reports that are not on the same items."""


@dataclass(frozen=True)
class ReportRow:
    key: str
    truth: float
    guess: float
    low: float | None = None
    high: float | None = None

    @property
    def error(self) -> float:
        return abs(self.guess - self.truth)


def legacy_key(title: str, truth: float) -> str:
    """Reports written before rows had an `item` key: the title and the truth identify an item."""
    return f"{title}\x00{float(truth)!r}"


def _row_key(row: dict) -> str:
    return str(row["item"]) if "item" in row else legacy_key(row["title"], row["truth"])


def load_report(path: Path | str) -> dict[str, ReportRow]:
    """The rows of a per-item report by item key; refuses unreadable lines and repeated items."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ReportError(f"cannot read report {path}: {e.strerror or e}") from None
    rows: dict[str, ReportRow] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            row = ReportRow(_row_key(raw), float(raw["truth"]), float(raw["guess"]), raw.get("low"), raw.get("high"))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ReportError(f"{path}:{number}: not a per-item report row ({e})") from None
        if row.key in rows:
            raise ReportError(f"{path}:{number}: the same item appears twice")
        rows[row.key] = row
    if not rows:
        raise ReportError(f"{path}: no rows")
    return rows


def paired_rows(a: dict[str, ReportRow], b: dict[str, ReportRow], name_a: str = "A", name_b: str = "B"):
    """The two reports' rows in the same item order; refuses reports on different item sets."""
    only_a, only_b = a.keys() - b.keys(), b.keys() - a.keys()
    if only_a or only_b:
        raise ReportError(f"the reports are not on the same items: {len(only_a)} only in {name_a}, {len(only_b)} only in "
                          f"{name_b} ({len(a.keys() & b.keys())} shared); evaluate both on the same data file")
    keys = sorted(a)
    for key in keys:
        if abs(a[key].truth - b[key].truth) > 1e-6:
            raise ReportError(f"item {key}: truth {a[key].truth} in {name_a} but {b[key].truth} in {name_b}")
    return [a[k] for k in keys], [b[k] for k in keys]


def compare_reports(path_a: Path | str, path_b: Path | str, resamples: int = RESAMPLES,
                    level: float = LEVEL, seed: int = SEED) -> PairedDifference:
    rows_a, rows_b = paired_rows(load_report(path_a), load_report(path_b), str(path_a), str(path_b))
    return paired_difference([r.error for r in rows_a], [r.error for r in rows_b], resamples, level, seed)


def describe(result: PairedDifference, name_a: str, name_b: str) -> str:
    low, high = result.ci
    verdict = {"a better": f"{name_a} is better", "b better": f"{name_b} is better"}.get(result.verdict, "no significant difference")
    return (f"{result.n} items. mean error {name_a} ${result.mean_a:,.2f}, {name_b} ${result.mean_b:,.2f}\n"
            f"mean of (|error {name_a}| - |error {name_b}|) = ${result.difference:+,.2f}, paired "
            f"{result.level * 100:.0f}% CI [${low:+,.2f}, ${high:+,.2f}]: {verdict}")


def register(cli: typer.Typer) -> None:
    @cli.command("compare")
    def compare_command(
        report_a: Annotated[Path, typer.Argument(help="Per-item report of estimator A (`pricer evaluate --report`).")],
        report_b: Annotated[Path, typer.Argument(help="Per-item report of estimator B, on the same items.")],
        resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = RESAMPLES,
        seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = SEED,
        as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
    ) -> None:
        """Paired comparison of two estimators on the same items: "better" only when the CI excludes zero."""
        try:
            result = compare_reports(report_a, report_b, resamples, LEVEL, seed)
        except (ReportError, ValueError) as e:
            fail(e)
        names = (report_a.stem, report_b.stem) if report_a.stem != report_b.stem else ("A", "B")
        typer.echo(describe(result, *names))
        if as_json:
            typer.echo(json.dumps({"a": str(report_a), "b": str(report_b), **result.to_dict()}))
