"""Charts: the course's scatter of truth vs estimate, and the leaderboard bars. PNG, written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.evaluation.metrics import GREEN, ORANGE, RED, Score, band
from app.runtime.atomic import replacing

_COLOURS = {GREEN: "#2ca02c", ORANGE: "#ff7f0e", RED: "#d62728"}


def save_figure(fig, path: Path | str) -> None:
    """Save a matplotlib figure as PNG to a temporary name beside `path`, then rename; the figure is closed."""
    import matplotlib.pyplot as plt

    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["text.parse_math"] = False  # prices carry "$": no mathtext
    return plt


def scatter_chart(path: Path | str, truths: Sequence[float], guesses: Sequence[float], scored: Score, name: str) -> None:
    """Truth on x, estimate on y, coloured by the course's bands, the y = x line, scores in the title."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 7))
    top = max(max(truths), max(guesses)) * 1.02
    ax.plot([0, top], [0, top], color="#1f77b4", lw=1.5, alpha=0.7, label="y = x")
    colours = [_COLOURS[band(t, g)] for t, g in zip(truths, guesses, strict=True)]
    ax.scatter(truths, guesses, s=10, c=colours)
    ax.set(xlabel="Ground truth ($)", ylabel="Model estimate ($)", xlim=(0, top), ylim=(0, top), title=scored.title(name))
    ax.legend(loc="upper left")
    save_figure(fig, path)


def leaderboard_chart(path: Path | str, results: Sequence[tuple[str, Score]]) -> None:
    """Mean error per estimator (bars, lower is better), labelled with RMSLE and hit rate."""
    plt = pyplot()
    ordered = sorted(results, key=lambda r: r[1].mean_error, reverse=True)
    names = [name for name, _ in ordered]
    errors = [s.mean_error for _, s in ordered]
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.6 * len(ordered)))
    bars = ax.barh(names, errors, color="#4c72b0")
    for bar, (_, s) in zip(bars, ordered, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f"  ${s.mean_error:,.2f}  RMSLE {s.rmsle:.2f}  hits {s.hit_rate * 100:.1f}%", va="center", fontsize=9)
    n = ordered[0][1].n if ordered else 0
    ax.set(xlim=(0, max(errors) * 1.6), xlabel="Mean absolute error ($), lower is better", title=f"Pricer leaderboard on {n} items")
    save_figure(fig, path)
