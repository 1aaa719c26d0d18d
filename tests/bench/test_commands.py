"""`pricer bench <name>`: one group; options and no name are `pricer bench load`; the old names
(`pricer bench-<name>`, `pricer index bench`) still run the same command and are hidden from --help."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from app.bench.commands import BENCHES, OLD_NAMES
from app.cli import cli


def test_the_group_lists_every_benchmark():
    result = CliRunner().invoke(cli, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in BENCHES:
        assert f" {name} " in result.output


@pytest.mark.parametrize("args", [["bench"], ["bench", "load"]])
def test_no_name_is_the_load_bench(args, tmp_path):
    missing = CliRunner().invoke(cli, args)
    assert missing.exit_code == 2 and "Missing option '--data'" in missing.output
    absent = CliRunner().invoke(cli, [*args, "--data", str(tmp_path / "none.jsonl"), "--url", "http://127.0.0.1:9"])
    assert absent.exit_code == 2 and "not found" in absent.output


def test_old_names_are_hidden_from_help():
    top = CliRunner().invoke(cli, ["--help"], env={"COLUMNS": "200"})
    index = CliRunner().invoke(cli, ["index", "--help"], env={"COLUMNS": "200"})
    assert top.exit_code == index.exit_code == 0
    assert "bench-" not in top.output and " bench " in top.output
    assert " build " in index.output and " bench " not in index.output


def _command(*path: str):
    command = typer.main.get_command(cli)
    for name in path:
        command = command.get_command(typer.Context(command), name)
    return command


@pytest.mark.parametrize("old, new", OLD_NAMES.items())
def test_old_names_still_run_the_same_command(old, new):
    before, after = _command(*old.split()), _command("bench", new)
    assert before.hidden and not after.hidden
    assert [(p.opts, p.secondary_opts, p.default, p.required) for p in before.params] == \
        [(p.opts, p.secondary_opts, p.default, p.required) for p in after.params]
    assert CliRunner().invoke(cli, [*old.split(), "--help"]).exit_code == 0


def test_an_old_name_runs_and_says_the_new_one():
    result = CliRunner().invoke(cli, ["bench-overload", "--url", "http://example.com:8000", "--seconds", "1"])
    assert result.exit_code == 2 and "not a loopback address" in result.output
    assert "pricer bench overload" in result.output
