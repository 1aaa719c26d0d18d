"""`pricer compare` on hand-made per-item reports; `evaluate` prints the CI and coverage."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.evaluation.compare import ReportError, compare_reports
from app.evaluation.report import write_report
from app.evaluation.runner import predict_with_intervals
from app.model.items import Item
from tests.factories import make_items


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _reports(tmp_path, items, guesses_a, guesses_b):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_report(a, items, guesses_a)
    write_report(b, list(reversed(items)), list(reversed(guesses_b)))  # order must not matter
    return a, b


def test_compare_says_better_when_the_paired_ci_excludes_zero(tmp_path):
    items = make_items(40, seed=5)
    a, b = _reports(tmp_path, items, [i.price + 5 for i in items], [i.price + 20 for i in items])
    result = compare_reports(a, b)
    assert result.difference == pytest.approx(-15.0)
    assert result.verdict == "a better"
    out = run("compare", a, b, "--json")
    assert out.exit_code == 0, out.output
    assert "a is better" in out.stdout
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["difference"] == pytest.approx(-15.0) and line["verdict"] == "a better"
    assert line["difference_ci"] == pytest.approx([-15.0, -15.0])


def test_compare_no_significant_difference(tmp_path):
    items = make_items(40, seed=5)
    # The same errors, swapped between the two item by item: mean difference 0.
    a, b = _reports(tmp_path, items,
                    [i.price + (10 if k % 2 else 12) for k, i in enumerate(items)],
                    [i.price + (12 if k % 2 else 10) for k, i in enumerate(items)])
    out = run("compare", a, b)
    assert out.exit_code == 0, out.output
    assert "no significant difference" in out.stdout


def test_compare_refuses_reports_on_different_items(tmp_path):
    items = make_items(40, seed=5)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_report(a, items, [i.price for i in items])
    write_report(b, items[:39] + make_items(1, seed=9), [i.price for i in items])
    with pytest.raises(ReportError, match="not on the same items: 1 only in"):
        compare_reports(a, b)
    out = run("compare", a, b)
    assert out.exit_code == 2
    assert "not on the same items" in out.output


def test_compare_refuses_a_file_that_is_not_a_report(tmp_path):
    items = make_items(5)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_report(a, items, [1.0] * 5)
    b.write_text('{"title": "x"}\n')
    out = run("compare", a, b)
    assert out.exit_code == 2 and "b.jsonl:1: not a per-item report row" in out.output


@dataclass
class _Estimate:
    price: float
    low: float
    high: float


class _IntervalEstimator:
    """Half its intervals hold the truth: the even items'."""

    name = "fixed"

    def estimates(self, items: list[Item]):
        return [_Estimate(i.price, i.price - 1, i.price + 1) if k % 2 == 0 else _Estimate(i.price, 0.0, 0.5)
                for k, i in enumerate(items)]


def test_intervals_flow_into_the_run_and_the_report(tmp_path):
    items = make_items(10)  # the chunk of 4 restarts k: even items of each chunk hold the truth
    guesses, intervals = predict_with_intervals(_IntervalEstimator(), items, chunk=4)
    assert guesses == [i.price for i in items]
    from app.evaluation.bootstrap import coverage

    inside = coverage([i.price for i in items], [lo for lo, _ in intervals], [hi for _, hi in intervals])
    assert inside == 0.5
    path = tmp_path / "r.jsonl"
    write_report(path, items, guesses, intervals)
    row = json.loads(path.read_text().splitlines()[0])
    assert row["low"] == items[0].price - 1 and row["high"] == items[0].price + 1 and row["item"]


def test_evaluate_prints_the_ci_and_carries_it_in_json(tmp_path):
    train, data = tmp_path / "train.jsonl", tmp_path / "data.jsonl"
    from app.model.item_files import write_items

    write_items(train, make_items(60, seed=1))
    write_items(data, make_items(30, seed=2))
    out = run("evaluate", "--data", data, "--estimator", "constant", "--train", train, "--json")
    assert out.exit_code == 0, out.output
    assert "mean error 95% CI [$" in out.stdout
    scores = json.loads(out.stdout.strip().splitlines()[-1])
    low, high = scores["mean_error_ci"]
    assert low < scores["mean_error"] < high
    assert "coverage" not in scores  # the constant gives no interval
    board = run("leaderboard", "--data", data, "--train", train, "--estimator", "constant")
    assert "| mean error 95% CI |" in board.stdout and " to $" in board.stdout
