"""The console script builds only the command it runs (typer builds every command's options)."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from carbonledger.cli import app, only_command


def _names(program: typer.Typer) -> set[str]:
    return set(typer.main.get_command(program).commands)  # type: ignore[attr-defined]


def test_a_command_is_built_alone_and_runs() -> None:
    assert _names(only_command(app, ["etl", "--quiet"])) == {"etl"}
    assert _names(only_command(app, ["db", "current"])) == {"db"}
    assert _names(only_command(app, ["journal", "show"])) == {"journal"}  # its name from add_typer
    result = CliRunner().invoke(only_command(app, ["db", "--help"]), ["db", "--help"])
    assert result.exit_code == 0 and "upgrade" in result.output and "grant-team" in result.output
    result = CliRunner().invoke(only_command(app, ["etl", "--help"]), ["etl", "--help"])
    assert result.exit_code == 0 and "--mlflow-uri" in result.output


def test_help_options_and_unknown_names_get_every_command() -> None:
    every = _names(app)
    assert {"etl", "db", "journal", "report", "when"} <= every
    for argv in ([], ["--help"], ["no-such-command"]):
        assert only_command(app, argv) is app
    result = CliRunner().invoke(only_command(app, ["no-such"]), ["no-such"])
    assert result.exit_code != 0 and "No such command" in result.output
    assert _names(app) == every  # the whole program is left as it was
