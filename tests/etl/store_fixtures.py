"""MLflow tracking stores on SQLite and PostgreSQL for the direct-read tests.

A PostgreSQL store is a database of its own: MLflow's migrations run once per session into a
template database, and each test gets ``CREATE DATABASE ... TEMPLATE`` of it (dropped after).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]


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
    if request.param == "sqlite":  # a copy of the session's migrated store (tests/conftest.py)
        shutil.copyfile(request.getfixturevalue("mlflow_sqlite_template"), tmp_path / "mlflow.db")
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


def metered_sqlite_store(
    folder: Path, n_runs: int, *, api_runs: int, teams: int = 0
) -> tuple[str, float]:
    """A SQLite MLflow store in ``folder`` with ``n_runs`` metered runs: ``(uri, facility kWh)``.

    ``api_runs`` runs (distinct figures, ``carbon.team`` ``team-{i % teams}`` when ``teams``)
    go through MLflow's API, then are copied inside the store's tables up to ``n_runs`` as
    ``bench/mlflow_stores.py`` copies them (new run ids, later times, same figures; MLflow
    reads them as its own). Writing each run through the API cost a minute per store.
    """
    from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
    from mlflow.tracking import MlflowClient

    assert n_runs % api_runs == 0, "copies are whole: n_runs must be a multiple of api_runs"
    had = os.environ.get("CARBONLEDGER_DISABLE")
    os.environ["CARBONLEDGER_DISABLE"] = "1"  # fixture runs carry no plugin metrics of their own
    try:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        client = MlflowClient(uri)
        exp = client.create_experiment("big")
        total = 0.0
        for i in range(api_runs):
            metrics = metered_metrics(gpu=0.001 * (i + 1))
            total += metrics["carbon/facility_energy_kwh"]
            tags = metered_tags(**({"carbon.team": f"team-{i % teams}"} if teams else {}))
            make_run(client, exp, metrics=metrics, tags=tags, end_ms=T0_MS + i * 1000)
        _dispose(uri)
        sys.path.insert(0, str(REPO / "bench"))
        from mlflow_stores import clone_runs  # sets CARBONLEDGER_DISABLE at import if unset

        clone_runs(folder / "mlflow.db", n_runs)
    finally:
        if had is None:
            del os.environ["CARBONLEDGER_DISABLE"]
        else:
            os.environ["CARBONLEDGER_DISABLE"] = had
    return uri, total * (n_runs // api_runs)


def _dispose(uri: str) -> None:
    from mlflow.tracking._tracking_service.utils import _get_store

    engine = getattr(_get_store(uri), "engine", None)
    if engine is not None:
        engine.dispose()
