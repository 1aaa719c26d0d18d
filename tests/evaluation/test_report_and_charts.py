"""The per-item report and the PNG charts."""

from __future__ import annotations

import json
import os

from app.evaluation import score
from app.evaluation.charts import leaderboard_chart, scatter_chart
from app.evaluation.report import report_rows, write_report
from tests.factories import make_items

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_rows_carry_truth_guess_error_and_band(tmp_path):
    items = make_items(3)
    guesses = [items[0].price, items[1].price + 100, 0.0]
    rows = report_rows(items, guesses)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["error"] == 0 and rows[0]["band"] == "green"
    assert rows[1]["error"] == 100.0
    assert rows[2]["guess"] == 0.0
    path = tmp_path / "report.jsonl"
    assert write_report(path, items, guesses) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == json.loads(json.dumps(rows))


def test_scatter_and_leaderboard_charts_are_pngs(tmp_path):
    items = make_items(20)
    truths = [i.price for i in items]
    guesses = [t * 1.3 for t in truths]
    s = score(truths, guesses)
    scatter_chart(tmp_path / "scatter.png", truths, guesses, s, "x1.3")
    leaderboard_chart(tmp_path / "board.png", [("x1.3", s), ("same", score(truths, truths))])
    for name in ("scatter.png", "board.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert sorted(os.listdir(tmp_path)) == ["board.png", "scatter.png"]  # no temporary left behind
