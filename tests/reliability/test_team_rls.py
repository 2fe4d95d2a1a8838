"""Team row-level security on PostgreSQL: a role granted one team sees only that team's rows,
through the tables, the views and the reporting functions, and cannot write.

Real roles on the real server (random suffixes, dropped after), the ledger in its own schema,
runs loaded by the real ETL from an MLflow store, plus the deterministic reporting seed
(inference windows, budgets, alerts, rollups). Each role connects with ``-c role=NAME`` (the
same as ``SET ROLE`` at connection start), so ``current_user`` is the team role.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from carbonledger.cli import app as cli_app
from carbonledger.errors import LedgerError
from carbonledger.ledger import create_ledger_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reporting"))

from cl_ledger_fixtures import make_run, metered_metrics, metered_tags  # noqa: E402
from seed import seed_ledger  # noqa: E402

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True),
]

# tables and views the app and analysts read that carry a team column
TEAM_TABLES = (
    "runs", "experiments", "inference_windows", "rollup_team_month", "rollup_model_month",
    "rollup_inference_daily", "rollup_scope2_month", "rollup_ranges",
)  # fmt: skip
TEAM_VIEWS = ("run_co2e", "inference_co2e", "v_run_emissions", "v_inference_daily", "v_scope2",
              "v_team_monthly")  # fmt: skip


def _as(url: str, role: str) -> str:
    """The ledger URL, connecting as ``role`` (session user postgres, current user ``role``)."""
    parsed = make_url(url)
    options = f"{parsed.query['options']} -crole={role}"
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.fixture
def roles(ledger: Engine) -> Iterator[dict[str, str]]:
    """Three NOLOGIN roles: two team roles and an unlisted reader (like the app's role)."""
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"cl_rls_{k}_{suffix}" for k in ("vision", "nlp", "reader")}
    with ledger.begin() as conn:
        for name in names.values():
            conn.exec_driver_sql(f"CREATE ROLE {name} NOLOGIN")
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {names['reader']}")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {names['reader']}")
    try:
        yield names
    finally:
        with ledger.begin() as conn:
            for name in names.values():
                conn.exec_driver_sql(f"DROP OWNED BY {name}")
                conn.exec_driver_sql(f"DROP ROLE {name}")


@pytest.fixture
def loaded(ledger: Engine, client: Any, mlflow_uri: str) -> Engine:
    """The reporting seed (teams vision, nlp, speech) plus ETL-loaded runs of vision and nlp."""
    from carbonledger.etl import run_etl

    exp = client.create_experiment("rls")
    for i, team in enumerate(["vision", "nlp", "vision", "nlp", "speech"]):
        make_run(
            client,
            exp,
            metrics=metered_metrics(gpu=1.0 + i),
            tags=metered_tags(**{"carbon.team": team}),
        )
    [summary] = run_etl(ledger, mlflow_uris=[mlflow_uri])
    assert summary.loaded == 5
    seed_ledger(ledger)  # after the ETL: its budgets' source is not reachable
    with ledger.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO quarantine (source_id, record_id, reason, detail, payload) "
                "SELECT id, 'r-bad', 'invalid', 'x', '{}' FROM tracking_sources LIMIT 1"
            )
        )
        budgets = conn.execute(text("SELECT DISTINCT scope, scope_name FROM budgets")).all()
        assert ("team", "nlp") in budgets or ("team", "vision") in budgets, budgets
    return ledger


def _grant(url: str, role: str, team: str) -> None:
    result = CliRunner().invoke(
        cli_app, ["db", "grant-team", role, "--team", team, "--ledger-url", url]
    )
    assert result.exit_code == 0, result.output
    assert f"team {team} granted" in result.stdout


def test_a_team_role_sees_only_its_team_everywhere_and_cannot_write(
    loaded: Engine, ledger_url: str, roles: dict[str, str]
) -> None:
    """Injected: two roles granted `vision` and `nlp` with `carbonledger db grant-team`, one
    unlisted reader. Checked: through every team table, every view and the reporting functions
    each team role sees exactly its team's rows (and their totals equal the owner's filtered
    totals); run energy, run metrics, budgets and alerts follow; no quarantine row; the
    unlisted reader sees every team; team roles cannot INSERT, UPDATE, DELETE or add
    themselves to another team."""
    from carbonledger.reporting import parse_period, queries, reporting_engine, runs

    _grant(ledger_url, roles["vision"], "vision")
    _grant(ledger_url, roles["nlp"], "nlp")
    again = CliRunner().invoke(
        cli_app, ["db", "grant-team", roles["nlp"], "--team", "nlp", "--ledger-url", ledger_url]
    )
    assert "already granted" in again.stdout

    period = parse_period("2024")
    with loaded.connect() as owner:
        all_teams = {t for (t,) in owner.execute(text("SELECT DISTINCT team FROM runs"))}
        assert {"vision", "nlp", "speech"} <= all_teams
        owner_rows = {
            team: {
                obj: owner.execute(
                    text(f"SELECT COUNT(*) FROM {obj} WHERE team = :t"), {"t": team}
                ).scalar_one()
                for obj in TEAM_TABLES + TEAM_VIEWS
            }
            for team in ("vision", "nlp")
        }
    # every object has rows of these teams (inference: nlp only; experiments carry no team)
    assert all(
        owner_rows["vision"][o] + owner_rows["nlp"][o]
        for o in TEAM_TABLES[:1] + TEAM_TABLES[2:] + TEAM_VIEWS
    )
    owner_report = reporting_engine(ledger_url)
    try:
        owner_totals = {
            t: queries.totals(owner_report, period=period, team=t) for t in ("vision", "nlp")
        }
        owner_scope2 = {
            t: queries.scope2(owner_report, period=period, team=t).co2e_location_kg.sum()
            for t in ("vision", "nlp")
        }
    finally:
        owner_report.dispose()

    for team in ("vision", "nlp"):
        engine = create_ledger_engine(_as(ledger_url, roles[team]))
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar_one() == roles[team]
                for obj in TEAM_TABLES + TEAM_VIEWS:
                    seen = conn.execute(
                        text(f"SELECT team, COUNT(*) FROM {obj} GROUP BY team")
                    ).all()
                    assert {t for t, _ in seen} <= {team}, (obj, seen)
                    assert sum(n for _, n in seen) == owner_rows[team][obj], obj
                names = {n for (n,) in conn.execute(text("SELECT name FROM teams"))}
                assert names == {team}
                energy_runs = conn.execute(
                    text(
                        "SELECT DISTINCT r.team FROM run_energy e "
                        "LEFT JOIN runs r ON r.id = e.run_pk"
                    )
                ).all()
                assert energy_runs == [(team,)]
                metric_teams = conn.execute(
                    text(
                        "SELECT DISTINCT r.team FROM run_metrics m LEFT JOIN runs r "
                        "ON r.source_id = m.source_id AND r.run_id = m.run_id"
                    )
                ).all()
                assert metric_teams in ([(team,)], [])
                budgets = conn.execute(text("SELECT scope, scope_name FROM budgets")).all()
                assert set(budgets) <= {("team", team)}
                status = conn.execute(text("SELECT DISTINCT scope_name FROM v_budget_status")).all()
                assert set(status) <= {(team,)}
                alerts = conn.execute(
                    text(
                        "SELECT COUNT(*) FROM budget_alerts a "
                        "LEFT JOIN budgets b ON b.id = a.budget_id WHERE b.id IS NULL"
                    )
                ).scalar_one()
                assert alerts == 0
                assert conn.execute(text("SELECT COUNT(*) FROM quarantine")).scalar_one() == 0
                mapping = conn.execute(text("SELECT role_name, team FROM team_roles")).all()
                assert mapping == [(roles[team], team)]
            for sql in (
                "INSERT INTO teams (name) VALUES ('intruder')",
                f"UPDATE runs SET team = '{team}'",
                "DELETE FROM budgets",
                f"INSERT INTO team_roles VALUES ('{roles[team]}', 'speech')",
                "UPDATE rollup_team_month SET co2e_location_kg = 0",
            ):
                with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as conn:
                    conn.execute(text(sql))
        finally:
            engine.dispose()

        report = reporting_engine(_as(ledger_url, roles[team]))
        try:
            assert queries.filter_options(report)["teams"] == [team]
            assert queries.totals(report, period=period) == owner_totals[team]
            assert set(queries.by_team(report, period=period).team) == {team}
            assert queries.scope2(report, period=period).co2e_location_kg.sum() == pytest.approx(
                owner_scope2[team]
            )
            assert set(runs.runs_table(report, period=period).team) == {team}
            assert set(queries.top_runs(report, period=period).team) <= {team}
        finally:
            report.dispose()

    reader = reporting_engine(_as(ledger_url, roles["reader"]))
    try:
        assert set(queries.filter_options(reader)["teams"]) >= {"vision", "nlp", "speech"}
        with reader.connect() as conn:
            assert {
                t for (t,) in conn.execute(text("SELECT DISTINCT team FROM v_run_emissions"))
            } == all_teams
            assert conn.execute(text("SELECT COUNT(*) FROM quarantine")).scalar_one() == 1
    finally:
        reader.dispose()


def test_grant_team_says_what_to_fix(ledger_url: str, ledger: Engine, tmp_path: Path) -> None:
    """Checked: an unknown role, an empty team and a SQLite ledger each give one actionable
    line and exit 1, and grant nothing."""
    from carbonledger.ledger import migrate
    from carbonledger.ledger.access import grant_team

    def cli(*args: str, url: str = ledger_url) -> Any:
        return CliRunner().invoke(cli_app, ["db", "grant-team", *args, "--ledger-url", url])

    missing = cli(f"cl_rls_nobody_{uuid.uuid4().hex[:8]}", "--team", "vision")
    assert missing.exit_code == 1
    assert "does not exist: create it first" in missing.stderr
    empty = cli("postgres", "--team", " ")
    assert empty.exit_code == 1 and "--team is empty" in empty.stderr
    with ledger.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM team_roles")).scalar_one() == 0

    sqlite_url = f"sqlite:///{tmp_path / 'l.db'}"
    sqlite = create_ledger_engine(sqlite_url)
    migrate.upgrade(sqlite)
    with pytest.raises(LedgerError, match="SQLite ledger has no roles"), sqlite.begin() as conn:
        grant_team(conn, role="x", team="vision")
    sqlite.dispose()
    on_sqlite = cli("x", "--team", "vision", url=sqlite_url)
    assert on_sqlite.exit_code == 1 and "PostgreSQL" in on_sqlite.stderr
