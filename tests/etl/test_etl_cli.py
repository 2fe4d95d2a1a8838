"""`carbonledger etl`: summary line, exit status and messages that never leak the password."""

from __future__ import annotations

from typing import Any

from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine
from typer.testing import CliRunner

from carbonledger.cli import app


def test_etl_prints_a_closing_summary(
    ledger: Engine, ledger_url: str, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags())
    make_run(
        client, exp, metrics={**metered_metrics(), "carbon/energy_kwh": -1.0}, tags=metered_tags()
    )

    result = CliRunner().invoke(
        app, ["etl", "--mlflow-uri", mlflow_uri, "--ledger-url", ledger_url, "--quiet"]
    )

    assert result.exit_code == 0, result.output
    assert "loaded 1, updated 0, unchanged 0, quarantined 1 (negative 1), stale 0" in result.output


def test_an_unmigrated_ledger_fails_with_the_fix(ledger_url: str, mlflow_uri: str) -> None:
    result = CliRunner().invoke(
        app, ["etl", "--mlflow-uri", mlflow_uri, "--ledger-url", ledger_url]
    )
    assert result.exit_code == 1
    assert "carbonledger db upgrade" in result.output


def test_an_unreachable_ledger_never_prints_its_password(mlflow_uri: str) -> None:
    url = "postgresql+psycopg://carbon:s3cr3t-pw@127.0.0.1:1/ledger"
    result = CliRunner().invoke(app, ["etl", "--mlflow-uri", mlflow_uri, "--ledger-url", url])
    assert result.exit_code == 1
    assert "s3cr3t-pw" not in result.output
    assert "error:" in result.output and "--ledger-url" in result.output


def test_an_unreadable_tracking_server_fails_and_names_it(
    ledger: Engine, ledger_url: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    result = CliRunner().invoke(
        app,
        ["etl", "--mlflow-uri", "http://user:pw-xyz@127.0.0.1:9", "--ledger-url", ledger_url, "-q"],
    )
    assert result.exit_code == 1
    assert "pw-xyz" not in result.output and "left as it was" in result.output


def test_no_tracking_uri_is_an_actionable_error(ledger_url: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["etl", "--ledger-url", ledger_url])
    assert result.exit_code == 1 and "--mlflow-uri" in result.output
