"""`carbonledger etl`: summary line, exit status and messages that never leak the password."""

from __future__ import annotations

import gc
import subprocess
import sys
from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.cli._startup import bulk_imports


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


def test_a_no_change_pass_imports_only_what_it_needs(
    ledger: Engine, ledger_url: str, client: Any, mlflow_uri: str
) -> None:
    """The pass as a CLI process (the < 1.5 s target): no MLflow client, pandas, numpy,
    Alembic, rich (``--quiet``), SQLAlchemy's ORM (the ledger's tables are Core) or urllib's
    HTTP client (budget webhooks), and the collector back on once the imports are done."""
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags())
    argv = ["carbonledger", "etl", "-q", "--mlflow-uri", mlflow_uri, "--ledger-url", ledger_url]
    code = (
        "import atexit, gc, sys\n"
        "heavy = ('mlflow', 'pandas', 'numpy', 'alembic', 'rich', 'sqlalchemy.orm', "
        "'urllib.request')\n"
        "atexit.register(lambda: print('loaded:', [m for m in heavy if m in sys.modules], "
        "'gc:', gc.isenabled()))\n"
        f"sys.argv = {argv!r}\n"
        "from carbonledger.cli import main\n"
        "main()\n"
    )
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        for _ in range(2)  # the first pass loads the run (its hours need pandas), the second not
    ]
    assert all(out.returncode == 0 for out in outs), [out.stderr for out in outs]
    assert "loaded 1," in outs[0].stdout and "loaded 0, updated 0," in outs[1].stdout
    assert outs[0].stdout.splitlines()[-1].endswith("gc: True")
    assert outs[1].stdout.splitlines()[-1] == "loaded: [] gc: True"


def test_bulk_imports_restores_the_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(ImportError):
        with bulk_imports():
            assert not gc.isenabled()
            import carbonledger_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()
    gc.disable()
    try:
        with bulk_imports():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
