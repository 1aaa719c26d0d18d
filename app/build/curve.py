"""The learning curve from a sweep's rows (app.build.sweep): the stack's nested held-out error, hits and
coverage against the number of training items, a power law fitted to the errors, and that law carried
past the data to the sizes a marketplace has (an extrapolation, and the chart and table say so).

    pricer build-curve builds/shipped/sweep.jsonl --out docs/img/learning-curve.png
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

EXTRAPOLATE_TO = (20_000, 200_000)


@dataclass(frozen=True)
class PowerLaw:
    """error = a * n ** -b, fitted by least squares on log error against log n (every row a point)."""

    a: float
    b: float
    b_stderr: float
    points: int

    def at(self, n: float, b: float | None = None) -> float:
        return self.a * n ** -(self.b if b is None else b)

    def range_at(self, n: float, anchor: float) -> tuple[float, float]:
        """The error at n with the slope moved by 1.96 standard errors, pivoting at `anchor` items."""
        def via(slope: float) -> float:
            return self.at(anchor) * (n / anchor) ** -slope

        return tuple(sorted((via(self.b - 1.96 * self.b_stderr), via(self.b + 1.96 * self.b_stderr))))


VARIES = (".limit", ".sample_seed")  # the settings that make the curve; any other names a series


def series(row: dict) -> str:
    """The row's series: its settings other than the training subset's size and seed ("" for the
    recipe as it is; e.g. `data.train=[...]` for a run with another file added)."""
    rest = {k: v for k, v in row["settings"].items() if not k.endswith(VARIES)}
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(rest.items()))


def _short(value) -> str:
    """A setting as a label: a list of data files as their names (train.jsonl + extra.jsonl)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "path" in v for v in value):
        return " + ".join(Path(v["path"]).name for v in value)
    return json.dumps(value)


def main_series(rows: list[dict]) -> list[dict]:
    """The series with the most rows (ties: the recipe as it is): the one the law is fitted on."""
    counts = defaultdict(int)
    for r in rows:
        counts[series(r)] += 1
    best = max(counts, key=lambda name: (counts[name], name == ""))
    return [r for r in rows if series(r) == best]


def load_rows(path: Path | str) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path}: no sweep rows")
    return rows


def fit(rows: list[dict]) -> PowerLaw:
    """The law over the main series (the other series are shown beside it, not fitted)."""
    from scipy.stats import linregress

    rows = main_series(rows)
    sizes = {r["train_items"] for r in rows}
    if len(sizes) < 2:
        raise ValueError("a curve needs at least two training sizes")
    x = [math.log(r["train_items"]) for r in rows]
    y = [math.log(r["stack"]["mean_error"]) for r in rows]
    got = linregress(x, y)
    return PowerLaw(a=math.exp(got.intercept), b=-got.slope, b_stderr=got.stderr, points=len(rows))


def table(rows: list[dict]) -> list[dict]:
    """One line per series and training size: runs, the mean (and spread) of error, hits, coverage."""
    by = defaultdict(list)
    for r in rows:
        by[(series(r), r["train_items"])].append(r["stack"])
    out = []
    for (name, n) in sorted(by, key=lambda key: (key[0] != "", key[0], key[1])):
        runs = by[(name, n)]
        errors = [s["mean_error"] for s in runs]
        out.append({"series": name, "train_items": n, "runs": len(runs), "mean_error": sum(errors) / len(runs),
                    "error_min": min(errors), "error_max": max(errors),
                    "hit_rate": sum(s["hit_rate"] for s in runs) / len(runs),
                    "coverage": sum(s.get("coverage", float("nan")) for s in runs) / len(runs)})
    return out


def markdown(rows: list[dict], law: PowerLaw) -> str:
    lines = ["| training items | runs | nested held-out error (mean; min to max) | hits | coverage |", "|---|---|---|---|---|"]
    lines += [f"| {t['train_items']:,}{' (' + t['series'] + ')' if t['series'] else ''} | {t['runs']} | ${t['mean_error']:.2f} (${t['error_min']:.2f} to ${t['error_max']:.2f}) "
              f"| {t['hit_rate'] * 100:.1f}% | {t['coverage'] * 100:.1f}% |" for t in table(rows)]
    anchor = max(r["train_items"] for r in main_series(rows))
    for n in EXTRAPOLATE_TO:
        low, high = law.range_at(n, anchor)
        lines.append(f"| {n:,} (extrapolated) | | ${law.at(n):.2f} (${low:.2f} to ${high:.2f} with the slope +/- 1.96 s.e.) | | |")
    lines.append(f"\nFit: error = {law.a:.1f} x n^-{law.b:.3f} (slope s.e. {law.b_stderr:.3f}, the {law.points} runs of the main series); "
                 f"the rows past {anchor:,} items are that law carried past the data, not measurements.")
    return "\n".join(lines)


def chart(rows: list[dict], law: PowerLaw, out: Path | str, title: str) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from app.evaluation.charts import pyplot, save_figure

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    main = series(main_series(rows)[0])
    names = sorted({series(r) for r in rows}, key=lambda n: n != main)
    colours = dict(zip(names, ["tab:blue", "tab:green", "tab:purple", "tab:red", "tab:brown"], strict=False))
    t = table(rows)
    for name in names:
        colour, label = colours.get(name, "black"), name or "the recipe"
        for r in (r for r in rows if series(r) == name):
            s = r["stack"]
            low, high = s["mean_error_ci"]
            ax.errorbar(r["train_items"], s["mean_error"], yerr=[[s["mean_error"] - low], [high - s["mean_error"]]],
                        fmt="o", color=colour, alpha=0.5, capsize=2)
        line = [x for x in t if x["series"] == name]
        ax.plot([x["train_items"] for x in line], [x["mean_error"] for x in line], "-o", color=colour, label=label[:60])
        bx.plot([x["train_items"] for x in line], [x["hit_rate"] * 100 for x in line], "o-", color=colour,
                label=f"hits: {label[:40]}")
        bx.plot([x["train_items"] for x in line], [x["coverage"] * 100 for x in line], "s--", color=colour,
                label=f"coverage: {label[:40]}")
    anchor = max(r["train_items"] for r in main_series(rows))
    start = min(r["train_items"] for r in main_series(rows))
    grid = [n for n in (start * 1.15 ** i for i in range(120)) if n <= EXTRAPOLATE_TO[-1]]
    ax.plot(grid, [law.at(n) for n in grid], "--", color="tab:gray", label=f"fit {law.a:.0f} n^-{law.b:.3f}")
    for n in EXTRAPOLATE_TO:
        low, high = law.range_at(n, anchor)
        ax.errorbar(n, law.at(n), yerr=[[law.at(n) - low], [high - law.at(n)]], fmt="s", color="tab:orange", capsize=3)
        ax.annotate(f"extrapolated\n${law.at(n):.0f}", (n, law.at(n)), textcoords="offset points", xytext=(-30, 12), fontsize=8)
    ax.axvspan(anchor, EXTRAPOLATE_TO[-1] * 1.3, color="tab:orange", alpha=0.06)
    ax.set(xscale="log", xlabel="training items (log)", ylabel="nested held-out mean error ($)", title=title)
    ax.legend(fontsize=7)
    bx.set(xscale="log", xlabel="training items (log)", ylabel="%", title="hits and coverage (measured only)")
    bx.legend(fontsize=7)
    for axis in (ax, bx):  # plain numbers: the figure turns mathtext off (prices carry "$")
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
    save_figure(fig, out)
