"""The app, `report` and `advise` read CARBONLEDGER_READ_DATABASE_URL (a read replica); the ETL
writes the ledger URL.

The "replica" is a second ledger (a PostgreSQL schema, or a SQLite file) loaded by an earlier
ETL pass than the ledger: it lacks the newest run, as a replica behind its primary does.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import TEST_FACTORS, make_run, metered_metrics, metered_tags
from expected import totals as expected_totals
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.etl import run_etl
from carbonledger.ledger import create_ledger_engine, migrate
from carbonledger.ledger.repositories import seed_emission_factors
from carbonledger.reporting import reporting_engine
from carbonledger.settings import get_settings

APP = str(Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py")
BEHIND = "Read from a replica"


@pytest.fixture
def replica_url(ledger_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second migrated ledger of the same kind as ``ledger_url`` (TEST_FACTORS seeded)."""
    if make_url(ledger_url).get_backend_name() == "sqlite":
        path = tmp_path / "replica.db"
        shutil.copyfile(request.getfixturevalue("ledger_sqlite_template"), path)
        url, schema = f"sqlite:///{path}", None
    else:
        base = make_url(request.getfixturevalue("postgres_url"))
        schema = f"cl_replica_{uuid.uuid4().hex[:12]}"
        with create_ledger_engine(base).begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    engine = create_ledger_engine(url)
    if schema is not None:
        migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=TEST_FACTORS)
    engine.dispose()
    try:
        yield url
    finally:
        if schema is not None:
            admin = create_ledger_engine(make_url(request.getfixturevalue("postgres_url")))
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.dispose()


def count_runs(url: str) -> int:
    engine = create_ledger_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM runs")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def lagging(
    ledger: Engine,
    ledger_url: str,
    replica_url: str,
    client: Any,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, str]:
    """The replica holds 2 runs (an earlier pass); the ledger 3, loaded by `carbonledger etl`
    with both URLs set. Both are in the environment; returns (ledger URL, replica URL)."""
    exp = client.create_experiment("e", tags={"carbon.team": "nlp"})
    for gpu in (1.0, 2.0):
        make_run(client, exp, metrics=metered_metrics(gpu=gpu), tags=metered_tags())
    replica = create_ledger_engine(replica_url)
    run_etl(replica, mlflow_uris=[mlflow_uri])
    replica.dispose()
    make_run(client, exp, metrics=metered_metrics(gpu=10.0), tags=metered_tags(), name="newest")
    monkeypatch.setenv("CARBONLEDGER_LEDGER_URL", ledger_url)
    monkeypatch.setenv("CARBONLEDGER_READ_DATABASE_URL", replica_url)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["etl", "--mlflow-uri", mlflow_uri, "-q"])
    assert result.exit_code == 0, result.output
    return ledger_url, replica_url


def test_the_etl_loads_the_ledger_url_never_the_read_url(lagging: tuple[str, str]) -> None:
    ledger_url, replica_url = lagging
    assert (count_runs(ledger_url), count_runs(replica_url)) == (3, 2)


def _report(*args: str) -> str:
    result = CliRunner().invoke(app, ["report", "--period", "2024-06", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_report_reads_the_read_url_and_says_it_is_behind(lagging: tuple[str, str]) -> None:
    ledger_url, _ = lagging
    from_replica = _report()
    assert "| Training runs | 2 |" in from_replica
    assert "Figures as of the ETL pass of " in from_replica and BEHIND in from_replica
    for option in ("--read-url", "--ledger-url"):  # an option beats the variable
        from_ledger = _report(option, ledger_url)
        assert "| Training runs | 3 |" in from_ledger and BEHIND not in from_ledger


def test_advise_reads_the_read_url(
    lagging: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, replica_url = lagging
    broken = "postgresql+psycopg://carbon:s3cret-pw@127.0.0.1:9/nowhere"
    monkeypatch.setenv("CARBONLEDGER_READ_DATABASE_URL", broken)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["advise", "--json"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: cannot reach the ledger at ") and "127.0.0.1:9" in line
    assert "--read-url" in line and "CARBONLEDGER_READ_DATABASE_URL" in line
    assert "s3cret-pw" not in line
    ok = CliRunner().invoke(app, ["advise", "--json", "--read-url", replica_url])
    assert ok.exit_code == 0, ok.output


def test_a_write_through_the_read_engine_is_refused(lagging: tuple[str, str]) -> None:
    _, replica_url = lagging
    engine = reporting_engine()  # the settings' read URL
    try:
        assert engine.url.database == make_url(replica_url).database
        with pytest.raises(Exception, match="(?i)read.?only"):
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM runs"))
    finally:
        engine.dispose()
    assert count_runs(replica_url) == 2


def test_the_app_reads_the_read_url_and_shows_it_is_behind(lagging: tuple[str, str]) -> None:
    import streamlit as st

    ledger_url, replica_url = lagging
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}["CO2e location-based"]
    replica, ledger = (create_ledger_engine(u) for u in (replica_url, ledger_url))
    try:
        want = expected_totals(replica, first="2024-06", last="2024-06")["loc_kg"]
        newer = expected_totals(ledger, first="2024-06", last="2024-06")["loc_kg"]
    finally:
        replica.dispose()
        ledger.dispose()
    assert shown == f"{want:,.2f} kg CO2e" and want < newer
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "Figures as of the ETL pass of " in captions and BEHIND in captions
