"""Monthly partitions of the time tables: migration, month boundaries, detach; SQLite unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.errors import LedgerError
from carbonledger.etl.inference import upsert_windows
from carbonledger.ledger import create_ledger_engine, migrate
from carbonledger.ledger.partitions import (
    detach_partitions,
    ensure_partitions,
    is_partitioned,
    list_partitions,
)

BEFORE = "7e17c3d5f9a1"  # the revision before the partitions
# Windows in three months, one on each side of a month boundary.
STARTS = ["2024-11-30 23:59:00+00", "2024-12-01 00:00:00+00", "2025-03-15 12:00:00+00"]
VIEWS = ("v_inference_daily", "inference_co2e", "v_window_embodied", "activity_co2e")


def _window(i: int, start: str) -> dict[str, object]:
    when = datetime.fromisoformat(start)
    return {
        "source_id": 1,
        "run_id": f"serve-{i}",
        "model_name": "m",
        "model_version": 1,
        "team": "t",
        "window_start": when,
        "window_end": when.replace(second=30),
        "activity_year": when.year,
        "requests": 10 + i,
        "energy_kwh": 0.5 + i,
        "pue": 1.2,
        "facility_energy_kwh": (0.5 + i) * 1.2,
        "grid_zone": "DE",
    }


def _seed(conn: Connection) -> None:
    conn.execute(text("INSERT INTO tracking_sources (id, uri, kind) VALUES (1, 'x', 'mlflow')"))
    upsert_windows(conn, [_window(i, s) for i, s in enumerate(STARTS)], update=False)
    conn.execute(
        text(
            "INSERT INTO activity_energy_hours (record_kind, record_pk, utc_hour, zone, "
            "profile_cell, energy_kwh, facility_energy_kwh) SELECT 'window', id, "
            "CAST(EXTRACT(epoch FROM window_start) AS bigint) / 3600, 'DE', 0, energy_kwh, "
            "facility_energy_kwh FROM inference_windows"
        )
    )


def _snapshot(conn: Connection) -> dict[str, list[tuple[object, ...]]]:
    out = {
        "windows": [tuple(r) for r in conn.execute(text("SELECT * FROM inference_windows"))],
        "hours": [tuple(r) for r in conn.execute(text("SELECT * FROM activity_energy_hours"))],
    }
    for view in VIEWS:
        out[view] = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {view}"))]  # noqa: S608
    return {k: sorted(v, key=repr) for k, v in out.items()}


@pytest.fixture
def pg_url(ledger_url: str) -> str:
    if not ledger_url.startswith("postgresql"):
        pytest.skip("partitions are PostgreSQL only (SQLite keeps one table)")
    return ledger_url


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = create_ledger_engine(pg_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        _seed(conn)
    yield engine
    engine.dispose()


def test_upgrade_and_downgrade_keep_every_row_view_and_policy(pg_url: str) -> None:
    engine = create_ledger_engine(pg_url)
    migrate.upgrade(engine, BEFORE)
    with engine.begin() as conn:
        _seed(conn)
    with engine.connect() as conn:
        before = _snapshot(conn)
        assert not is_partitioned(conn, "inference_windows")
    assert len(before["windows"]) == 3 and len(before["v_inference_daily"]) == 3

    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert is_partitioned(conn, "inference_windows")
        assert is_partitioned(conn, "activity_energy_hours")
        assert _snapshot(conn) == before
        months = {p.month for p in list_partitions(conn) if p.table == "inference_windows"}
        assert {"2024-11", "2024-12", "2025-01", "2025-02", "2025-03", None} <= months
        policies = conn.execute(
            text("SELECT tablename FROM pg_policies WHERE schemaname = current_schema()")
        ).scalars()
        assert {"inference_windows", "activity_energy_hours"} <= set(policies)
        invoker = conn.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'v_inference_daily'::regclass")
        ).scalar()
        assert invoker == ["security_invoker=true"]
    with engine.begin() as conn:  # new ids still come from the one sequence
        upsert_windows(conn, [_window(9, "2025-03-16 00:00:00+00")], update=False)
        ids = conn.execute(text("SELECT id FROM inference_windows ORDER BY id")).scalars()
        assert list(ids) == [1, 2, 3, 4]
        conn.execute(text("DELETE FROM inference_windows WHERE id = 4"))

    migrate.downgrade(engine, BEFORE)
    with engine.connect() as conn:
        assert not is_partitioned(conn, "inference_windows")
        assert not is_partitioned(conn, "activity_energy_hours")
        assert _snapshot(conn) == before
        pk = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'pk_inference_windows' AND connamespace = "
                "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
            )
        ).scalar()
        assert pk == "PRIMARY KEY (id)"
    engine.dispose()


def test_an_insert_past_the_created_months_lands_in_default_then_moves(pg: Engine) -> None:
    with pg.begin() as conn:  # a writer that does not call ensure_partitions
        conn.execute(
            text(
                "INSERT INTO inference_windows (source_id, run_id, window_start, window_end, "
                "requests, energy_kwh, facility_energy_kwh) VALUES (1, 'late', "
                "'2031-01-31 23:59:30+00', '2031-02-01 00:00:30+00', 1, 0.1, 0.1)"
            )
        )
    with pg.begin() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM inference_windows_default")).scalar() == 1
        created = ensure_partitions(
            conn, datetime(2031, 1, 31, tzinfo=UTC), datetime(2031, 2, 1, tzinfo=UTC), ahead=0
        )
        assert "inference_windows_p203101" in created
        assert conn.execute(text("SELECT COUNT(*) FROM inference_windows_default")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM inference_windows_p203101")).scalar() == 1
        assert (
            ensure_partitions(
                conn, datetime(2031, 1, 5, tzinfo=UTC), datetime(2031, 1, 6, tzinfo=UTC), ahead=0
            )
            == []
        )


def test_the_etl_write_creates_the_months_it_needs_across_a_boundary(pg: Engine) -> None:
    with pg.begin() as conn:
        upsert_windows(conn, [_window(20, "2032-05-31 23:59:45+00")], update=False)
        names = {p.name for p in list_partitions(conn)}
        default = conn.execute(text("SELECT COUNT(*) FROM inference_windows_default")).scalar()
    assert {"inference_windows_p203205", "inference_windows_p203206"} <= names
    assert "inference_windows_p203208" in names  # three months ahead of the window's end
    assert default == 0


def test_detach_before_a_month_keeps_the_rows_in_a_plain_table(pg: Engine, pg_url: str) -> None:
    out = CliRunner().invoke(app, ["db", "partitions", "--ledger-url", pg_url])
    assert out.exit_code == 0, out.output
    assert "inference_windows_p202411" in out.output and "default" in out.output
    out = CliRunner().invoke(
        app, ["db", "partitions", "--detach-before", "2024-12", "--ledger-url", pg_url]
    )
    assert out.exit_code == 0, out.output
    assert "detached inference_windows_p202411" in out.output
    assert "detached activity_energy_hours_p202411" in out.output
    with pg.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM inference_windows")).scalar() == 2
        assert conn.execute(text("SELECT COUNT(*) FROM inference_windows_p202411")).scalar() == 1
        assert "inference_windows_p202411" not in {p.name for p in list_partitions(conn)}
    with pg.begin() as conn:  # a late window of the detached month: default, not an error
        upsert_windows(conn, [_window(30, "2024-11-02 00:00:00+00")], update=False)
        assert conn.execute(text("SELECT COUNT(*) FROM inference_windows_default")).scalar() == 1
    with pg.begin() as conn, pytest.raises(LedgerError, match="YYYY-MM"):
        detach_partitions(conn, before="2024/12")


def test_sqlite_keeps_one_table(ledger_url: str) -> None:
    if not ledger_url.startswith("sqlite"):
        pytest.skip("SQLite behaviour")
    engine = create_ledger_engine(ledger_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tracking_sources (id, uri, kind) VALUES (1, 'x', 'mlflow')"))
        assert upsert_windows(
            conn, [_window(i, s) for i, s in enumerate(STARTS)], update=False
        ) == (3, 0)
        assert not is_partitioned(conn, "inference_windows")
        assert (
            ensure_partitions(
                conn, datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC)
            )
            == []
        )
        assert list_partitions(conn) == []
    out = CliRunner().invoke(app, ["db", "partitions", "--ledger-url", ledger_url])
    assert out.exit_code == 0 and "no partitions" in out.output
    engine.dispose()
