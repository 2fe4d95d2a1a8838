"""The ledger schema: Alembic upgrade/downgrade on SQLite and PostgreSQL, models == migrations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from carbonledger.ledger import create_ledger_engine, migrate
from carbonledger.ledger.models import Base
from carbonledger.ledger.partitions import include_object

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "tracking_sources",
    "teams",
    "experiments",
    "registered_models",
    "model_versions",
    "runs",
    "run_energy",
    "emission_factors",
    "inference_windows",
    "budgets",
    "budget_alerts",
    "etl_state",
    "quarantine",
}


def test_upgrade_creates_every_table_and_view_and_downgrade_removes_them(ledger_url: str) -> None:
    engine = create_ledger_engine(ledger_url)
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)
    insp = inspect(engine)
    assert TABLES <= set(insp.get_table_names())
    assert {"run_co2e", "current_emission_factors"} <= set(insp.get_view_names())
    assert migrate.current_revision(engine) == migrate.head_revision()

    migrate.downgrade(engine, "base")
    insp = inspect(engine)
    assert not TABLES & set(insp.get_table_names())
    assert not set(insp.get_view_names()) & {"run_co2e", "current_emission_factors"}
    migrate.upgrade(engine)  # and back up again
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_models_and_migrations_agree(ledger_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_ledger_engine(ledger_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_object}  # partitions aside
        ctx = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []


def test_constraint_names_follow_the_naming_convention() -> None:
    runs = Base.metadata.tables["runs"]
    names = {c.name for c in runs.constraints} | {i.name for i in runs.indexes}
    assert {"pk_runs", "uq_runs_source_id_run_id", "ck_runs_kind"} <= names
    assert "ix_runs_team_start_time" in names


def test_migration_files_are_date_prefixed() -> None:
    files = sorted(p.name for p in (REPO / "migrations" / "versions").glob("*.py"))
    assert files and all(name[:4].isdigit() and name[4] == "-" for name in files)


def test_db_cli_upgrade_current_downgrade(ledger_url: str) -> None:
    from typer.testing import CliRunner

    from carbonledger.cli import app

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(app, ["db", *args, "--ledger-url", ledger_url])

    up = cli("upgrade")
    assert up.exit_code == 0, up.output
    assert "emission factors:" in up.output and " added" in up.output
    assert "up to date" in cli("current").output
    reseed = cli("seed-factors")
    assert reseed.exit_code == 0 and "0 added, 0 restated" in reseed.output  # idempotent
    down = cli("downgrade", "base")
    assert down.exit_code == 0, down.output
    assert "empty" in cli("current").output


def test_head_read_from_the_scripts_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(migrate.migrations_dir()))
    assert migrate.head_revision() == scripts.get_current_head()


def _activity_co2e_definition(engine) -> str:  # noqa: ANN001
    """The view's definition as the database holds it (PostgreSQL: as it parsed it)."""
    import re

    from sqlalchemy import text

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = "SELECT pg_get_viewdef('activity_co2e'::regclass)"
        else:
            sql = "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'activity_co2e'"
        definition = conn.execute(text(sql)).scalar_one()
    return re.sub(r"\s+", " ", definition).replace("( ", "(").replace(" )", ")").strip()


def test_activity_co2e_rendered_by_co2e_sql_is_the_view_it_replaces(ledger_url: str) -> None:
    """a8b9c0d1e2f3 renders the view from carbonledger.ledger.co2e_sql: the same view."""
    engine = create_ledger_engine(ledger_url)
    migrate.upgrade(engine, "f6b7c8d9e0a1")
    before = _activity_co2e_definition(engine)
    migrate.upgrade(engine, "a8b9c0d1e2f3")
    assert _activity_co2e_definition(engine) == before
    migrate.downgrade(engine, "f6b7c8d9e0a1")
    assert _activity_co2e_definition(engine) == before
    engine.dispose()
