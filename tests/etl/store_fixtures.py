"""MLflow tracking stores on SQLite and PostgreSQL for the direct-read tests.

A PostgreSQL store is a database of its own: MLflow's migrations run once per session into a
template database, and each test gets ``CREATE DATABASE ... TEMPLATE`` of it (dropped after).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


def _admin(postgres_url: str) -> object:
    url = make_url(postgres_url).set(database="postgres")
    return create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_mlflow_template(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated by MLflow itself, used as the template of test stores."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    name = f"cl_mlflow_tpl_{uuid.uuid4().hex[:10]}"
    admin = _admin(postgres_url)
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    uri = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    store = SqlAlchemyStore(uri, "/tmp/cl-mlflow-artifacts")
    store.engine.dispose()
    try:
        yield name
    finally:
        with admin.connect() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()  # type: ignore[attr-defined]


def new_pg_store(postgres_url: str, template: str) -> tuple[str, str]:
    """``(uri, database)`` of a fresh PostgreSQL MLflow store copied from ``template``."""
    name = f"cl_mlflow_{uuid.uuid4().hex[:12]}"
    admin = _admin(postgres_url)
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    admin.dispose()  # type: ignore[attr-defined]
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False), name


def drop_pg_store(postgres_url: str, name: str) -> None:
    """Drop a store made by ``new_pg_store``."""
    admin = _admin(postgres_url)
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_uri(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty MLflow store (SQLite file or PostgreSQL database), set as the tracking URI."""
    import mlflow

    name = None
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        pg = request.getfixturevalue("postgres_url")
        uri, name = new_pg_store(pg, request.getfixturevalue("pg_mlflow_template"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(None)
        if name is not None:  # WITH (FORCE) also ends the connections MLflow keeps pooled
            drop_pg_store(request.getfixturevalue("postgres_url"), name)
