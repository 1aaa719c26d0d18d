"""`pricer data chart`: price histogram, category counts and token counts of an items file, one PNG."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from app.evaluation.charts import pyplot, save_figure
from app.model.items import Item


def data_chart(path: Path | str, items: Sequence[Item], token_counts: Sequence[int], title: str = "") -> None:
    plt = pyplot()
    fig, (ax_price, ax_cat, ax_tok) = plt.subplots(1, 3, figsize=(17, 5))
    prices = [item.price for item in items]
    ax_price.hist(prices, bins=range(0, 1000, 10), color="#4c72b0")
    mean = sum(prices) / len(prices)
    median = sorted(prices)[len(prices) // 2]
    ax_price.set(title=f"Prices: n={len(prices):,} mean=${mean:,.2f} median=${median:,.2f}", xlabel="Price ($)", ylabel="Items")

    categories = Counter(item.category or "unknown" for item in items).most_common()
    names = [c for c, _ in categories][::-1]
    counts = [n for _, n in categories][::-1]
    ax_cat.barh(names, counts, color="#55a868")
    for y, n in enumerate(counts):
        ax_cat.text(n, y, f" {n:,}", va="center", fontsize=8)
    ax_cat.set(title="Categories", xlabel="Items")

    ax_tok.hist(token_counts, bins=40, color="#c44e52")
    ax_tok.set(title=f"Tokens per item text: mean {sum(token_counts) / len(token_counts):,.1f}, max {max(token_counts)}",
               xlabel="Tokens", ylabel="Items")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
