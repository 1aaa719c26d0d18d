"""Draw the Grafana dashboard's panels without Grafana: every panel query of
deploy/grafana/dashboards/pricer.json is evaluated by a real Prometheus (its HTTP API) and drawn with
matplotlib in the dashboard's own grid layout. For docs/operations.md where Grafana cannot be installed
(it is not in Debian or on PyPI); the picture says so in its title.

    python deploy/render_dashboard.py --prometheus http://127.0.0.1:9090 --minutes 15 --out docs/dashboard.png
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from datetime import datetime
from pathlib import Path

import httpx

DASHBOARD = Path(__file__).resolve().parent / "grafana" / "dashboards" / "pricer.json"
UNIT_FORMAT = {
    "percentunit": lambda v: f"{100 * v:.0f}%",
    "s": lambda v: f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s",
    "reqps": lambda v: f"{v:.2f}/s",
    "currencyUSD": lambda v: f"${v:,.0f}",
}


def interpolate(expr: str, rate_interval: str) -> str:
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", rate_interval, expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)  # dashboard variables: all values


def legend(fmt: str, labels: dict) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1]) or "(none)", fmt or "")
    return text or ",".join(f"{k}={v}" for k, v in labels.items()) or "value"


def fmt(unit: str | None, value: float) -> str:
    if value is None or math.isnan(value):
        return "no data"
    return UNIT_FORMAT.get(unit, lambda v: f"{v:.3g}")(value)


class Prometheus:
    def __init__(self, url: str, start: float, end: float, step: float):
        self.http, self.start, self.end, self.step = httpx.Client(base_url=url, timeout=30), start, end, step

    def range(self, expr: str) -> list[dict]:
        params = {"query": expr, "start": self.start, "end": self.end, "step": self.step}
        return self._get("/api/v1/query_range", params)

    def instant(self, expr: str) -> list[dict]:
        return self._get("/api/v1/query", {"query": expr, "time": self.end})

    def _get(self, path: str, params: dict) -> list[dict]:
        body = self.http.get(path, params=params).raise_for_status().json()
        if body["status"] != "success":
            raise RuntimeError(f"{params['query']}: {body}")
        return body["data"]["result"]


def draw_timeseries(ax, panel, results, unit):
    for target, series in results:
        for s in series:
            t = [datetime.fromtimestamp(float(x)) for x, _ in s["values"]]
            v = [float(y) for _, y in s["values"]]
            ax.plot(t, v, lw=1.4, label=legend(target.get("legendFormat"), s["metric"]))
    if any(series for _, series in results):
        ax.legend(fontsize=6, loc="upper left", frameon=False)
        ax.yaxis.set_major_formatter(lambda v, _: fmt(unit, v))
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#888")
    ax.tick_params(labelsize=6)
    ax.xaxis.set_major_formatter(__import__("matplotlib.dates", fromlist=["DateFormatter"]).DateFormatter("%H:%M"))


def draw_heatmap(ax, panel, results, unit):
    import numpy as np

    series = sorted(results[0][1], key=lambda s: float(s["metric"]["le"]))
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    cumulative = np.array([[float(y) for _, y in s["values"]] for s in series])
    counts = np.diff(np.vstack([np.zeros(cumulative.shape[1]), cumulative]), axis=0)  # de-accumulate buckets
    labels = [fmt(unit, float(s["metric"]["le"])) if s["metric"]["le"] != "+Inf" else "+Inf" for s in series]
    ax.imshow(counts, aspect="auto", origin="lower", cmap="Oranges", interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ticks = np.linspace(0, counts.shape[1] - 1, 6).astype(int)
    ax.set_xticks(ticks, [datetime.fromtimestamp(float(series[0]["values"][i][0])).strftime("%H:%M") for i in ticks], fontsize=6)


def draw_stat(ax, panel, results, unit):
    values = [float(s["value"][1]) for _, series in results for s in series]
    ax.axis("off")
    ax.text(0.5, 0.45, fmt(unit, values[0]) if values else "no data", ha="center", va="center", fontsize=20, color="#2a7", transform=ax.transAxes)


def draw_table(ax, panel, results, unit):
    ax.axis("off")
    rows = []
    for _, series in results:
        for s in series:
            rows.append(", ".join(f"{k}={v}" for k, v in sorted(s["metric"].items())))
    ax.text(0.02, 0.9, "\n".join(rows) or "no data", va="top", fontsize=7, family="monospace", transform=ax.transAxes)


DRAW = {"timeseries": draw_timeseries, "heatmap": draw_heatmap, "stat": draw_stat, "table": draw_table}


def render(prom: Prometheus, board: dict, out: Path, rate_interval: str, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = board["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_px = 0.32  # inches per grid row
    fig = plt.figure(figsize=(18, height * unit_px + 0.8))
    top = 1 - 0.8 / (height * unit_px + 0.8)

    def box(grid):
        x, y, w, h = grid["x"] / 24, grid["y"] / height, grid["w"] / 24, grid["h"] / height
        return [x + 0.035, top * (1 - y - h) + 0.25 * h * top / 2, w - 0.045, h * top * 0.72]

    for panel in panels:
        if panel["type"] == "row":
            y = top * (1 - panel["gridPos"]["y"] / height)
            fig.text(0.005, y - 0.004, panel["title"], fontsize=11, weight="bold", va="top")
            continue
        ax = fig.add_axes(box(panel["gridPos"]))
        ax.set_title(panel["title"], fontsize=9, loc="left")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        results = []
        for target in panel["targets"]:
            expr = interpolate(target["expr"], rate_interval)
            instant = target.get("instant") or panel["type"] in ("stat", "table")
            results.append((target, prom.instant(expr) if instant else prom.range(expr)))
        DRAW[panel["type"]](ax, panel, results, unit)
    fig.suptitle(f"{board['title']} dashboard: panel queries evaluated by Prometheus, drawn with matplotlib (not Grafana)\n{subtitle}", fontsize=11, y=0.998)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    tmp.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--step", type=float, default=5, help="seconds between points")
    parser.add_argument("--rate-interval", default="30s", help="what $__rate_interval becomes")
    parser.add_argument("--end", type=float, default=None, help="unix time of the right edge (default: now)")
    parser.add_argument("--subtitle", default="")
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    args = parser.parse_args()
    end = args.end or time.time()
    prom = Prometheus(args.prometheus, end - 60 * args.minutes, end, args.step)
    render(prom, json.loads(args.dashboard.read_text()), args.out, args.rate_interval, args.subtitle)
    print(args.out)


if __name__ == "__main__":
    main()
