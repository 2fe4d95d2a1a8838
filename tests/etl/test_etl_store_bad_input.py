"""A database tracking URI the ETL cannot read gives one line naming the problem and the fix, on
the direct path and on the client path, and the ETL never writes to it.

Beside tests/etl/test_etl_store_schema.py (which reader a pass picks): here the databases are
empty, foreign (another application's tables), too old, or newer than the installed MLflow,
on SQLite and PostgreSQL, read with ``CARBONLEDGER_ETL_READ`` ``auto`` and ``client``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from store_fixtures import drop_pg_store
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.etl import run_etl, store_schema
from carbonledger.settings import get_settings

pytestmark = pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
READS = ["auto", "client"]


def etl_line(uri: str, ledger_url: str, read: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The single line `carbonledger etl` prints when it fails (exit status 1)."""
    monkeypatch.setenv("CARBONLEDGER_ETL_READ", read)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["etl", "--mlflow-uri", uri, "--ledger-url", ledger_url, "-q"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ")
    return line


def tables(uri: str) -> set[str]:
    engine = create_engine(uri)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bare_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file of 0 bytes, or a new PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.write_bytes(b"")
        yield f"sqlite:///{path}"
        return
    pg = request.getfixturevalue("postgres_url")
    name = f"cl_bare_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(pg).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    try:
        yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    finally:
        drop_pg_store(pg, name)


@pytest.mark.parametrize("foreign", [False, True], ids=["empty", "foreign"])
@pytest.mark.parametrize("read", READS)
def test_an_empty_or_foreign_database_is_no_store_and_is_left_untouched(
    bare_db: str,
    foreign: bool,
    read: str,
    ledger: Engine,
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if foreign:  # another application's tables, one of them named like MLflow's
        with create_engine(bare_db).begin() as conn:
            conn.execute(text("CREATE TABLE runs (id INTEGER PRIMARY KEY, note TEXT)"))
    before = tables(bare_db)

    line = etl_line(bare_db, ledger_url, read, monkeypatch)

    assert "is not an MLflow tracking store" in line and "--mlflow-uri" in line, line
    assert tables(bare_db) == before  # MLflow's client would have created its 60 tables


def set_revision(uri: str, revision: str) -> None:
    with create_engine(uri).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


@pytest.mark.parametrize("read", READS)
def test_a_schema_too_old_names_mlflow_db_upgrade(
    store_uri: str, read: str, ledger: Engine, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    head, parents = store_schema.mlflow_revisions()
    old = str(parents[head])
    set_revision(store_uri, old)

    line = etl_line(store_uri, ledger_url, read, monkeypatch)

    assert f"schema revision {old}, older than this MLflow needs ({head})" in line, line
    assert "`mlflow db upgrade " in line


@pytest.mark.parametrize("read", READS)
def test_a_schema_newer_than_the_installed_mlflow_names_the_mlflow_to_install(
    store_uri: str, read: str, ledger: Engine, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_revision(store_uri, "fedcba987654")  # as a newer MLflow's `mlflow db upgrade` leaves it

    line = etl_line(store_uri, ledger_url, read, monkeypatch)

    assert "revision fedcba987654, which the installed MLflow does not know" in line, line
    assert "pip install 'mlflow==" in line


@pytest.mark.postgres
@pytest.mark.parametrize("store_uri", ["postgresql"], indirect=True)
def test_an_untested_revision_of_a_postgresql_store_falls_back_with_one_warning(
    store_uri: str,
    ledger: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mlflow.tracking import MlflowClient

    client: Any = MlflowClient(store_uri)
    make_run(client, client.create_experiment("e"), metrics=metered_metrics(), tags=metered_tags())
    monkeypatch.setattr(store_schema, "TESTED_REVISIONS", frozenset({"0123456789ab"}))

    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        [summary] = run_etl(ledger, mlflow_uris=[store_uri])

    assert summary.loaded == 1
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "was not tested with" in warning and "through the MLflow client" in warning
