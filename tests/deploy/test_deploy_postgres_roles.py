"""docker/postgres: the init script, run for real against this machine's PostgreSQL.

Every name gets a random suffix (the server is shared), and everything is dropped afterwards.
The server here uses trust authentication, so the passwords are set but not exercised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from deploy_helpers import DOCKER, ENV_EXAMPLE, parse_env_file

pytestmark = pytest.mark.postgres

INIT_SH = DOCKER / "postgres" / "10-carbonledger-init.sh"
INIT_SQL = DOCKER / "postgres" / "carbonledger-init.sql"
VENV_BIN = Path(sys.executable).parent


def _server(postgres_url: str) -> dict[str, str]:
    url = urlsplit(postgres_url)
    return {
        "PGHOST": url.hostname or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_DB": url.path.lstrip("/") or "postgres",
    }


def _run_init(postgres_url: str, names: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CARBONLEDGER_"))}
    env.update(_server(postgres_url), INIT_SQL_FILE=str(INIT_SQL), **names)
    return subprocess.run(
        ["bash", str(INIT_SH)], env=env, capture_output=True, text=True, timeout=120
    )


def _url(postgres_url: str, user: str, database: str) -> str:
    url = urlsplit(postgres_url)
    return f"postgresql+psycopg://{user}@{url.hostname}:{url.port or 5432}/{database}"


@pytest.fixture(scope="module")
def stack_db(postgres_url: str) -> Iterator[dict[str, str]]:
    """The init script's databases and roles, under throwaway names."""
    import sqlalchemy as sa

    suffix = uuid.uuid4().hex[:8]
    names = {
        "LEDGER_DB": f"cl_deploy_{suffix}_ledger",
        "MLFLOW_DB": f"cl_deploy_{suffix}_mlflow",
        "LEDGER_ETL_USER": f"cl_deploy_{suffix}_etl",
        "LEDGER_APP_USER": f"cl_deploy_{suffix}_app",
        "MLFLOW_DB_USER": f"cl_deploy_{suffix}_mlflow",
        "POSTGRES_PASSWORD": uuid.uuid4().hex,
        "LEDGER_ETL_PASSWORD": uuid.uuid4().hex,
        "LEDGER_APP_PASSWORD": uuid.uuid4().hex,
        "MLFLOW_DB_PASSWORD": uuid.uuid4().hex,
    }
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        first = _run_init(postgres_url, names)
        assert first.returncode == 0, first.stderr
        again = _run_init(postgres_url, names)  # idempotent: a re-run changes nothing
        assert again.returncode == 0, again.stderr
        yield names
    finally:
        with admin.connect() as conn:
            for db in (names["LEDGER_DB"], names["MLFLOW_DB"]):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            for role in ("LEDGER_ETL_USER", "LEDGER_APP_USER", "MLFLOW_DB_USER"):
                conn.execute(sa.text(f'DROP ROLE IF EXISTS "{names[role]}"'))
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_roles WHERE rolname LIKE :p"),
                {"p": f"cl_deploy_{suffix}_%"},
            ).scalar_one()
        admin.dispose()
        assert left == 0


@pytest.fixture(scope="module")
def migrated(stack_db: dict[str, str], postgres_url: str) -> dict[str, str]:
    """`carbonledger db upgrade` run as the ETL role, exactly as the migrate service does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env["CARBONLEDGER_LEDGER_URL"] = _url(
        postgres_url, stack_db["LEDGER_ETL_USER"], stack_db["LEDGER_DB"]
    )
    result = subprocess.run(
        [str(VENV_BIN / "carbonledger"), "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return stack_db


def test_roles_are_plain_logins_and_own_their_databases(
    stack_db: dict[str, str], postgres_url: str
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        roles = conn.execute(
            sa.text(
                "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, "
                "rolpassword IS NOT NULL FROM pg_authid WHERE rolname = ANY(:r)"
            ),
            {"r": [stack_db[k] for k in ("LEDGER_ETL_USER", "LEDGER_APP_USER", "MLFLOW_DB_USER")]},
        ).all()
        owners = dict(
            conn.execute(
                sa.text(
                    "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                    "WHERE datname = ANY(:d)"
                ),
                {"d": [stack_db["LEDGER_DB"], stack_db["MLFLOW_DB"]]},
            ).all()
        )
    engine.dispose()
    assert len(roles) == 3
    assert all(row[1:] == (True, False, False, False, True) for row in roles), roles
    assert owners == {
        stack_db["LEDGER_DB"]: stack_db["LEDGER_ETL_USER"],
        stack_db["MLFLOW_DB"]: stack_db["MLFLOW_DB_USER"],
    }


def test_read_only_role_selects_tables_and_views_created_later_and_cannot_write(
    migrated: dict[str, str], postgres_url: str
) -> None:
    import sqlalchemy as sa

    # NullPool: each connect() is a new session (the test turns a session default off below)
    app = sa.create_engine(
        _url(postgres_url, migrated["LEDGER_APP_USER"], migrated["LEDGER_DB"]),
        poolclass=sa.pool.NullPool,
    )
    try:
        with app.connect() as conn:
            # tables and views the migrations created after the grants: default privileges
            factors = conn.execute(sa.text("SELECT count(*) FROM emission_factors")).scalar_one()
            assert factors > 0  # seeded by db upgrade
            conn.execute(sa.text("SELECT count(*) FROM run_co2e")).scalar_one()
            conn.execute(sa.text("SELECT count(*) FROM current_emission_factors")).scalar_one()
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            tables = (
                conn.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')"
                        " AND NOT has_table_privilege(c.oid, 'SELECT')"
                    )
                )
                .scalars()
                .all()
            )
            assert tables == [], f"the app role cannot read {tables}"
            assert conn.execute(sa.text("SHOW default_transaction_read_only")).scalar() == "on"

        # refused by privileges, not only by the read-only session default
        for statement in (
            "INSERT INTO teams (name) VALUES ('intruder')",
            "UPDATE emission_factors SET intensity_g_per_kwh = 0",
            "DELETE FROM emission_factors",
            "CREATE TABLE intruder (id int)",
            "CREATE TEMP TABLE intruder (id int)",
        ):
            with app.connect() as conn:
                conn.execute(sa.text("SET default_transaction_read_only = off"))
                conn.execute(sa.text("COMMIT"))
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sa.text(statement))
                conn.rollback()
        # and every transaction of the role starts read-only (the second line of defence)
        with app.connect() as conn:
            assert conn.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"
    finally:
        app.dispose()


def test_a_table_the_etl_role_adds_later_is_readable_by_the_app(
    migrated: dict[str, str], postgres_url: str
) -> None:
    import sqlalchemy as sa

    etl = sa.create_engine(_url(postgres_url, migrated["LEDGER_ETL_USER"], migrated["LEDGER_DB"]))
    app = sa.create_engine(_url(postgres_url, migrated["LEDGER_APP_USER"], migrated["LEDGER_DB"]))
    try:
        with etl.begin() as conn:  # e.g. a monthly partition or a rollup of a later migration
            conn.execute(sa.text("CREATE TABLE later_rollup (month date, co2e_kg float)"))
            conn.execute(sa.text("INSERT INTO later_rollup VALUES ('2026-01-01', 1.5)"))
            conn.execute(sa.text("CREATE MATERIALIZED VIEW later_mv AS SELECT * FROM later_rollup"))
        with app.connect() as conn:
            assert conn.execute(sa.text("SELECT co2e_kg FROM later_rollup")).scalar() == 1.5
            assert conn.execute(sa.text("SELECT co2e_kg FROM later_mv")).scalar() == 1.5
    finally:
        with etl.begin() as conn:
            conn.execute(sa.text("DROP MATERIALIZED VIEW IF EXISTS later_mv"))
            conn.execute(sa.text("DROP TABLE IF EXISTS later_rollup"))
        etl.dispose()
        app.dispose()


def test_other_roles_cannot_connect_to_the_ledger(
    stack_db: dict[str, str], postgres_url: str
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(_url(postgres_url, stack_db["MLFLOW_DB_USER"], stack_db["LEDGER_DB"]))
    with pytest.raises(sa.exc.OperationalError, match="permission denied"):
        engine.connect().close()
    engine.dispose()


@pytest.mark.slow
def test_mlflow_tracking_store_runs_on_psycopg3_as_the_mlflow_role(
    stack_db: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    """The compose file's backend store: postgresql+psycopg:// (psycopg 3), MLflow's own role."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = _url(postgres_url, stack_db["MLFLOW_DB_USER"], stack_db["MLFLOW_DB"])
    store = SqlAlchemyStore(uri, str(tmp_path / "artifacts"))
    try:
        assert store.engine.dialect.driver == "psycopg"
        exp = store.create_experiment("deploy-check")
        assert store.get_experiment(exp).name == "deploy-check"
    finally:
        store.engine.dispose()


def test_init_refuses_the_placeholders_of_env_example(postgres_url: str) -> None:
    names = {
        k: v
        for k, v in parse_env_file(ENV_EXAMPLE).items()
        if k.startswith(("LEDGER_", "MLFLOW_DB", "POSTGRES_PASSWORD"))
    }
    result = _run_init(postgres_url, names)
    assert result.returncode == 1
    assert "placeholder" in result.stderr


def test_init_refuses_missing_variables(postgres_url: str) -> None:
    result = _run_init(postgres_url, {"LEDGER_DB": "x"})
    assert result.returncode == 1
    assert "LEDGER_ETL_PASSWORD" in result.stderr
