"""activity_co2e reads a record's hours with the record (PostgreSQL: a lateral join)

``activity_co2e`` aggregated every row of ``activity_energy_hours`` before joining the
records, whatever the query's filter: a page of runs, a day of serving windows or one run's
detail each paid for the whole table (at 100 million windows, every window's hour). Now the
hours of a record are read with it: on PostgreSQL a ``LEFT JOIN LATERAL`` on the hours table's
key (``record_kind, record_pk``) bounded to the record's own UTC hours, so an index probe per
record reaches only the partitions of its months; on SQLite (the embedded, single-machine
ledger) one grouped pass as before. The location-based and hourly market aggregates are read
in one probe (they were two). Columns and figures are unchanged.

Revision ID: c3d4e5f6a7b8
Revises: b2c3d4e5f6a7
Create Date: 2026-12-02 06:00:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "c3d4e5f6a7b8"
down_revision: str | None = "b2c3d4e5f6a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _previous(name: str, revision_id: str):  # type: ignore[no-untyped-def]
    """The module of an earlier migration of this folder (its view SQL)."""
    path = next(Path(__file__).parent.glob(f"*_{revision_id}.py"))
    spec = importlib.util.spec_from_file_location(f"_cl_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Per record, over its hours: the location-based figures (as 4b13c7d2e9a1) and the hours with
# an hourly contractual factor (as 8a18b5c3d7e2), in one pass.
_HOUR_AGGREGATES = """
           SUM(eh.facility_energy_kwh) AS facility_energy_kwh,
           SUM(CASE WHEN hf.id IS NOT NULL
                    THEN eh.facility_energy_kwh * hf.intensity_g_per_kwh ELSE 0.0 END)
               AS hourly_g,
           SUM(CASE WHEN hf.id IS NULL AND p.ratio IS NOT NULL
                    THEN eh.facility_energy_kwh * p.ratio ELSE 0.0 END) AS profile_kwh,
           SUM(CASE WHEN hf.id IS NULL AND p.ratio IS NULL
                    THEN eh.facility_energy_kwh ELSE 0.0 END) AS yearly_kwh,
           MIN(CASE WHEN hf.id IS NOT NULL THEN 2 WHEN p.ratio IS NOT NULL THEN 1 ELSE 0 END)
               AS finest,
           MAX(CASE WHEN hf.is_estimated THEN 1 ELSE 0 END) AS any_estimated,
           MIN(hf.source) AS hourly_source,
           MIN(hf.licence) AS hourly_licence,
           SUM(CASE WHEN hm.id IS NOT NULL THEN eh.facility_energy_kwh ELSE 0.0 END)
               AS market_hourly_kwh,
           SUM(CASE WHEN hm.id IS NOT NULL
                    THEN eh.facility_energy_kwh * hm.intensity_g_per_kwh ELSE 0.0 END)
               AS market_hourly_g,
           SUM(CASE WHEN hm.id IS NOT NULL AND hf.id IS NOT NULL
                    THEN eh.facility_energy_kwh * hf.intensity_g_per_kwh ELSE 0.0 END)
               AS matched_location_hourly_g,
           SUM(CASE WHEN hm.id IS NOT NULL AND hf.id IS NULL
                    THEN eh.facility_energy_kwh * COALESCE(p.ratio, 1.0) ELSE 0.0 END)
               AS matched_location_yearly_kwh,
           MIN(hm.source) AS market_hourly_source
    FROM activity_energy_hours eh
    LEFT JOIN hourly_emission_factors hf
        ON hf.zone = eh.zone AND hf.basis = 'location' AND hf.utc_hour = eh.utc_hour
       AND hf.is_current
    LEFT JOIN hourly_profiles p
        ON p.zone = eh.zone AND p.basis = 'location' AND p.profile_cell = eh.profile_cell
    LEFT JOIN hourly_emission_factors hm
        ON hm.zone = eh.zone AND hm.basis = 'market' AND hm.utc_hour = eh.utc_hour
       AND hm.is_current"""

# The record's hours lie within its start and end hour (the ETL spreads energy only there);
# one hour of margin each side. CAST to BIGINT: a numeric bound would not reach the index.
_HOUR_OF = "CAST(FLOOR(EXTRACT(EPOCH FROM {t}) / 3600) AS BIGINT)"
_PG_JOIN = f"""
    LEFT JOIN LATERAL (
        SELECT {_HOUR_AGGREGATES}
        WHERE eh.record_kind = y.record_kind AND eh.record_pk = y.record_pk
          AND eh.utc_hour >= {_HOUR_OF.format(t="y.start_time")} - 1
          AND eh.utc_hour <= {_HOUR_OF.format(t="y.end_time")} + 1
    ) hh ON TRUE"""
_SQLITE_CTE = f"""
), hh AS (
    SELECT eh.record_kind, eh.record_pk, {_HOUR_AGGREGATES}
    GROUP BY eh.record_kind, eh.record_pk"""
_SQLITE_JOIN = """
    LEFT JOIN hh ON hh.record_kind = y.record_kind AND hh.record_pk = y.record_pk"""
_MARKET_CARRIED = (
    "hh.market_hourly_kwh, hh.market_hourly_g, hh.matched_location_hourly_g,\n"
    "           hh.matched_location_yearly_kwh, hh.market_hourly_source,"
)
_CO2E_MARKET = ("co2e_market_kg", "estimated_co2e_market_kg", "inclusive_co2e_market_kg")


def _cut(text: str, start: str, end: str | None = None) -> str:
    """``text`` from ``start`` (included) to ``end`` (excluded), each found exactly once."""
    assert text.count(start) == 1, start
    i = text.index(start)
    if end is None:
        return text[i:]
    assert text.count(end) == 1, end
    return text[i : text.index(end)]


def _sql(dialect: str, columns: list[str]) -> str:
    hourly = _previous("hourly", "4b13c7d2e9a1")
    market = _previous("hourly_market", "8a18b5c3d7e2")
    old = hourly.ACTIVITY_CO2E
    head = _cut(old, "CREATE VIEW activity_co2e AS", "\n), hh AS (")
    m = _cut(old, "\n), m AS (", "\n)\nSELECT m.*,")
    m = m.replace("SELECT y.*,", "SELECT y.*, " + _MARKET_CARRIED, 1)
    join = _PG_JOIN if dialect == "postgresql" else _SQLITE_JOIN
    old_join = _SQLITE_JOIN.strip("\n")
    assert m.count(old_join) == 1
    m = m.replace(old_join, join.strip("\n"))
    mk = _cut(market._MARKET_HOURS, "\n), mk AS (")
    mk = mk.replace(
        "    LEFT JOIN k ON k.record_kind = m.record_kind AND k.record_pk = m.record_pk\n", ""
    )
    mk = mk.replace("k.market_hourly", "m.market_hourly").replace("k.matched_", "m.matched_")
    assert " k." not in mk and "(k." not in mk
    assert columns[-3:] == list(_CO2E_MARKET), columns[-3:]
    listed = ", ".join(f"mk.{c}" for c in columns[:-3])
    mk = mk.replace("SELECT mk.*,", f"SELECT {listed},", 1)
    ctes = head + (_SQLITE_CTE if dialect != "postgresql" else "") + m + mk
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    year = (
        "EXTRACT(YEAR FROM w.window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', w.window_start)"
    )
    return ctes.format(
        run_arm=one_truth._RUN_ARM, window_arm=one_truth._WINDOW_ARM.format(year=year)
    )


def _replace(sql: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
        op.execute("ALTER VIEW activity_co2e SET (security_invoker = true)")
    else:  # SQLite resolves a view's dependents by name when they are read
        op.execute("DROP VIEW activity_co2e")
        op.execute(sql)


def upgrade() -> None:
    bind = op.get_bind()
    columns = [c["name"] for c in sa.inspect(bind).get_columns("activity_co2e")]
    _replace(_sql(bind.dialect.name, columns))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    hourly = _previous("hourly", "4b13c7d2e9a1")
    market = _previous("hourly_market", "8a18b5c3d7e2")
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    prefix = hourly.ACTIVITY_CO2E[: hourly.ACTIVITY_CO2E.index("\nSELECT m.*,")].rstrip()
    year = (
        "EXTRACT(YEAR FROM w.window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', w.window_start)"
    )
    sql = (prefix[:-1] + market._MARKET_HOURS).format(
        run_arm=one_truth._RUN_ARM, window_arm=one_truth._WINDOW_ARM.format(year=year)
    )
    _replace(sql)
