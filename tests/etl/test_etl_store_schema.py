"""Which reader a pass uses, and the one-line errors of a store the direct path cannot read."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.errors import EtlError, StoreReadError
from carbonledger.etl import run_etl, sources, store_read, store_schema
from carbonledger.settings import get_settings


def use(monkeypatch: pytest.MonkeyPatch, read: str) -> None:
    monkeypatch.setenv("CARBONLEDGER_ETL_READ", read)
    get_settings.cache_clear()


def one_run_store(client: Any) -> None:
    make_run(client, client.create_experiment("e"), metrics=metered_metrics(), tags=metered_tags())


def test_a_database_uri_at_the_tested_revision_is_read_directly(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    one_run_store(MlflowClient(store_uri))
    with sources.open_source(store_uri) as source:
        assert source.kind == "store"
        assert isinstance(source, store_read.StoreReader)
        assert source.revision in store_schema.TESTED_REVISIONS
    use(monkeypatch, "client")
    with sources.open_source(store_uri) as source:
        assert source.kind == "client"


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9", "https://mlflow.example", "databricks"])
def test_servers_and_managed_uris_keep_the_client_path(uri: str) -> None:
    with sources.open_source(uri) as source:
        assert isinstance(source, sources.ClientSource)
    with pytest.raises(EtlError, match="database tracking URIs only"):
        with sources.open_source(uri, read="store"):
            pass


def test_the_direct_read_takes_a_read_only_snapshot(client: Any, mlflow_uri: str) -> None:
    one_run_store(client)
    with store_read.StoreReader(mlflow_uri) as reader:
        assert reader.conn is not None
        with pytest.raises(Exception, match="(?i)read.?only"):
            reader.conn.exec_driver_sql("DELETE FROM tags")


@pytest.mark.postgres
@pytest.mark.parametrize("store_uri", ["postgresql"], indirect=True)
def test_the_postgresql_snapshot_is_read_only_repeatable_read(store_uri: str) -> None:
    with store_read.StoreReader(store_uri) as reader:
        assert reader.conn is not None
        level = reader.conn.exec_driver_sql("SHOW transaction_isolation").scalar()
        read_only = reader.conn.exec_driver_sql("SHOW transaction_read_only").scalar()
    assert (level, read_only) == ("repeatable read", "on")


def test_pages_are_keyset_pages_covering_every_run_once(client: Any, mlflow_uri: str) -> None:
    exp = client.create_experiment("e")
    made = {
        make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), start_ms=T0_MS + i)
        for i in range(5)
    }
    with store_read.StoreReader(mlflow_uri) as reader:
        exps = reader.experiments()
        full = list(
            reader.changed_run_pages(sorted(exps), end_time_ms=None, heartbeat_ms=None, page_size=2)
        )
        sparse = list(
            reader.changed_run_pages(sorted(exps), end_time_ms=0, heartbeat_ms=None, page_size=2)
        )
    assert [len(p) for p in full] == [2, 2, 1]
    assert {r.info.run_id for p in full for r in p} == made
    created = [r.info.start_time for p in full for r in p]
    assert created == sorted(created)  # a full load walks the table in physical order
    assert [len(p) for p in sparse] == [2, 2, 1]
    ids = [r.info.run_id for p in sparse for r in p]
    assert ids == sorted(ids) and set(ids) == made  # a cursor pass pages on run_uuid
    assert all(len(r.data.tags) >= 12 and len(r.data.metrics) == 11 for p in sparse for r in p)


def test_a_database_that_is_no_mlflow_store_fails_in_one_line(
    tmp_path: Path, ledger: Engine, ledger_url: str
) -> None:
    other = tmp_path / "other.db"
    with create_engine(f"sqlite:///{other}").begin() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER)"))
    for uri, message in [
        (f"sqlite:///{other}", "is not an MLflow tracking store"),
        (f"sqlite:///{tmp_path / 'missing.db'}", "no MLflow store at"),
    ]:
        result = CliRunner().invoke(
            app, ["etl", "--mlflow-uri", uri, "--ledger-url", ledger_url, "-q"]
        )
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert "--mlflow-uri" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()  # the ETL never creates a store


@pytest.mark.postgres
def test_a_postgresql_database_that_is_no_mlflow_store_fails_with_the_fix(
    postgres_url: str,
) -> None:
    import uuid

    from sqlalchemy.engine import make_url
    from store_fixtures import drop_pg_store

    name = f"cl_not_mlflow_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    uri = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        with pytest.raises(StoreReadError, match="not an MLflow tracking store.*--mlflow-uri"):
            with sources.open_source(uri):
                pass
    finally:
        drop_pg_store(postgres_url, name)


def _set_revision(path: Path, revision: str) -> None:
    with create_engine(f"sqlite:///{path}").begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_a_store_older_than_mlflow_needs_names_the_upgrade(
    client: Any, mlflow_uri: str, tmp_path: Path, ledger: Engine, ledger_url: str
) -> None:
    one_run_store(client)
    head, parents = store_schema.mlflow_revisions()
    assert head in store_schema.TESTED_REVISIONS
    old = tmp_path / "old.db"
    shutil.copy(mlflow_uri.removeprefix("sqlite:///"), old)
    _set_revision(old, str(parents[head]))

    result = CliRunner().invoke(
        app, ["etl", "--mlflow-uri", f"sqlite:///{old}", "--ledger-url", ledger_url, "-q"]
    )

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert f"schema revision {parents[head]}" in line and "mlflow db upgrade" in line


def test_an_untested_revision_falls_back_to_the_client_with_one_warning(
    client: Any,
    mlflow_uri: str,
    ledger: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    one_run_store(client)
    monkeypatch.setattr(store_schema, "TESTED_REVISIONS", frozenset({"0123456789ab"}))

    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        [summary] = run_etl(ledger, mlflow_uris=[mlflow_uri])

    assert summary.loaded == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "was not tested with (tested: 0123456789ab" in message
    assert "through the MLflow client" in message and "CARBONLEDGER_ETL_READ=client" in message
    use(monkeypatch, "store")
    with pytest.raises(StoreReadError, match="CARBONLEDGER_ETL_READ=auto"):
        run_etl(ledger, mlflow_uris=[mlflow_uri])


def test_the_cli_shows_the_fallback_warning_on_one_line(
    client: Any, mlflow_uri: str, ledger: Engine, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_run_store(client)
    monkeypatch.setattr(store_schema, "TESTED_REVISIONS", frozenset({"0123456789ab"}))
    result = CliRunner().invoke(
        app, ["etl", "--mlflow-uri", mlflow_uri, "--ledger-url", ledger_url, "-q"]
    )
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "through the MLflow client" in warning[0]


def test_a_store_with_several_workspaces_is_left_to_the_client(
    client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_run_store(client)
    path = mlflow_uri.removeprefix("sqlite:///")
    with create_engine(f"sqlite:///{path}").begin() as conn:
        conn.execute(text("UPDATE experiments SET workspace = 'team-b' WHERE name = 'e'"))
    with pytest.raises(StoreReadError, match="several workspaces"):
        with sources.open_source(mlflow_uri, read="store"):
            pass


def test_the_direct_path_never_imports_mlflow(
    client: Any, mlflow_uri: str, ledger: Engine, ledger_url: str
) -> None:
    one_run_store(client)
    code = (
        "import sys; from carbonledger.etl import run_etl; "
        "from carbonledger.ledger import create_ledger_engine; "
        f"[s] = run_etl(create_ledger_engine({ledger_url!r}), mlflow_uris=[{mlflow_uri!r}]); "
        "print(s.loaded, 'mlflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["1", "False"]
