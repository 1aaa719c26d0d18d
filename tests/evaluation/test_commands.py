"""`pricer evaluate` and `pricer leaderboard` through the real command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.model.item_files import write_items
from tests.factories import make_items


@pytest.fixture
def files(tmp_path):
    train, data = tmp_path / "train.jsonl", tmp_path / "data.jsonl"
    write_items(train, make_items(60, seed=1))
    write_items(data, make_items(20, seed=2))
    return train, data


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_evaluate_json_last_line_and_outputs(files, tmp_path):
    train, data = files
    chart, report = tmp_path / "scatter.png", tmp_path / "report.jsonl"
    result = run("evaluate", "--data", data, "--estimator", "constant", "--train", train, "--json",
                 "--chart", chart, "--report", report, "--limit", "10")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["estimator"] == "constant" and scores["n"] == 10
    assert {"mean_error", "rmsle", "hit_rate"} <= set(scores)
    mean = sum(i.price for i in make_items(60, seed=1)) / 60
    truths = [i.price for i in make_items(20, seed=2)[:10]]
    assert scores["mean_error"] == pytest.approx(sum(abs(mean - t) for t in truths) / 10)
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert len(report.read_text().splitlines()) == 10


def test_random_is_reproducible(files):
    _, data = files
    first = json.loads(run("evaluate", "--data", data, "--estimator", "random", "--json").stdout.strip().splitlines()[-1])
    again = json.loads(run("evaluate", "--data", data, "--estimator", "random", "--json").stdout.strip().splitlines()[-1])
    other = json.loads(run("evaluate", "--data", data, "--estimator", "random", "--json", "--seed", "7").stdout.strip().splitlines()[-1])
    assert first["mean_error"] == again["mean_error"] != other["mean_error"]


def test_leaderboard_scores_several_on_the_same_items(files, tmp_path):
    train, data = files
    chart = tmp_path / "board.png"
    result = run("leaderboard", "--train", train, "--data", data, "--estimator", "random", "--estimator", "constant",
                 "--estimator", "bow-ridge", "--chart", chart, "--json")
    assert result.exit_code == 0, result.output
    assert "| estimator | mean error | RMSLE | hit rate |" in result.output
    for name in ("random", "constant", "bow-ridge"):
        assert f"| {name} | $" in result.output
    board = json.loads(result.stdout.strip().splitlines()[-1])
    assert board["n"] == 20 and [r["estimator"] for r in board["results"]] == ["random", "constant", "bow-ridge"]
    assert chart.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estimator", "nonsense"], "unknown estimator 'nonsense'"),
        (["--estimator", "constant"], "must be fitted: pass --train"),
    ],
)
def test_client_mistakes_are_clear_errors(files, args, message):
    _, data = files
    result = run("evaluate", "--data", data, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_data_file_names_file_and_line(files, tmp_path):
    _, data = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.read_text().splitlines()[0] + '\n{"title": "x", "price": -3, "text": "t"}\n')
    result = run("evaluate", "--data", bad, "--estimator", "random")
    assert result.exit_code == 2
    assert f"{bad}:2:" in result.output


def test_titles_only_scores_what_a_title_alone_gets_and_train_origin_filters_the_fit(files, tmp_path):
    train, data = files
    rich = make_items(60, seed=1)
    write_items(train, [i.model_copy(update={"origin": "course-test:1" if n % 2 else "other"}) for n, i in enumerate(rich)])
    report = tmp_path / "report.jsonl"
    result = run("evaluate", "--data", data, "--estimator", "bow-ridge", "--train", train, "--train-origin", "course",
                 "--titles-only", "--json", "--report", report)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["titles_only"] is True and scores["n"] == 20
    from app.estimators.base import EstimatorOptions, create

    course = [i for n, i in enumerate(rich) if n % 2]
    expected = create("bow-ridge", EstimatorOptions(seed=42)).fit(course).predict([i.title_only() for i in make_items(20, seed=2)])
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["guess"] for r in rows] == pytest.approx(expected)
    assert run("evaluate", "--data", data, "--estimator", "constant", "--train", train, "--train-origin", "nope").exit_code == 2


def test_an_item_sent_as_its_title_alone():
    item = make_items(1, seed=3)[0]
    alone = item.title_only()
    from app.model.text import scrub

    assert alone.text == scrub(item.title) and alone.title == item.title
    assert (alone.details, alone.category, alone.price) == (None, None, item.price)
    assert len(alone.text) < len(item.text)


def test_fit_origin_keeps_only_those_items(tmp_path):
    train = tmp_path / "train.jsonl"
    items = make_items(40, seed=4)
    write_items(train, [i.model_copy(update={"origin": "course-test:1" if n < 10 else "lite"}) for n, i in enumerate(items)])
    result = run("fit", "--estimator", "constant", "--data", train, "--origin", "course", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["items"] == 10
    assert run("fit", "--estimator", "constant", "--data", train, "--origin", "x", "--out", tmp_path / "d").exit_code == 2
