"""The serving-window part of the rollup refresh: by UTC day, through sargable time ranges.

A refresh recomputes the days of the windows loaded or re-loaded since the last one
(:func:`dirty_days`): their rows of ``rollup_inference_daily`` and ``rollup_scope2_day`` are
deleted and rebuilt from ``activity_co2e``'s rules (CO2e, the one per-record computation:
:func:`carbonledger.ledger.co2e_sql.windows_sql`) and ``v_window_embodied`` (Scope 3)
selected by ``window_start >= :start AND window_start < :end``, so PostgreSQL reads only those
days' partitions through the ``window_start`` index; the days' hours are read as one set (a
range of their key) rather than probed per window as the view does. The days' CO2e rows are
computed once: grouped into a temporary table at the finest grain both daily tables need,
and each daily table is a sum of it. A full rebuild reads ``inference_co2e`` itself.

On PostgreSQL the refresh runs with JIT off and a larger ``work_mem``, set for its own
statements only (:data:`PG_SETTINGS`): compiling the day's query took ~6 s of a ~24 s read,
and at the default 4 MB the grouping sorted 720,000 rows on disk (132 MB) instead of hashing
them into a few thousand groups. The inference rows of
``rollup_team_month`` and ``rollup_scope2_month`` of the touched months are then the daily
rows summed by month: no per-window view is read for a month.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text

from carbonledger.ledger.co2e_sql import windows_sql
from carbonledger.reporting.rollup_sql import (
    FACTOR_GROUP,
    SCOPE2_FIGURES,
    SCOPE2_MONTH_INSERT,
    day_ranges,
    day_sql,
    key_ranges_sql,
    time_ranges_sql,
)

WINDOWS_TEMP = "cl_rollup_windows"
# Planner settings of a refresh on PostgreSQL (restored after it): see the module docstring.
PG_SETTINGS = {"jit": "off", "work_mem": "128MB"}

# The windows' CO2e rows grouped at the grain of both daily tables (version and factor
# grouping): from inference_co2e (a full rebuild) or the days' windows_sql.
_GROUPED = """
SELECT {day} AS day, COALESCE(model_name, '(unknown)') AS model_name,
       COALESCE(model_version, 0) AS model_version, COALESCE(team, 'unassigned') AS team,
       zone, factor_year, intensity_method, location_factor_source, location_factor_version,
       market_factor_source, market_instrument, market_is_location_fallback,
       COUNT(*) AS windows,
       SUM(CASE WHEN estimated_facility_energy_kwh > 0 THEN 1 ELSE 0 END)
           AS windows_with_estimates,
       SUM(requests) AS requests, SUM(energy_kwh) AS energy_kwh,
       SUM(facility_energy_kwh) AS facility_energy_kwh,
       SUM(estimated_facility_energy_kwh) AS estimated_facility_energy_kwh,
       SUM(co2e_location_kg) AS co2e_location_kg, SUM(co2e_market_kg) AS co2e_market_kg,
       SUM(estimated_co2e_location_kg) AS estimated_co2e_location_kg,
       SUM(estimated_co2e_market_kg) AS estimated_co2e_market_kg,
       SUM(co2e_location_yearly_kg) AS co2e_location_yearly_kg,
       MAX(location_intensity_g_per_kwh) AS location_intensity_g_per_kwh,
       MAX(market_intensity_g_per_kwh) AS market_intensity_g_per_kwh
FROM {source}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
"""

_DAILY = """
INSERT INTO rollup_inference_daily (day, model_name, model_version, team, month, windows,
    requests, energy_kwh, facility_energy_kwh, co2e_location_kg, co2e_market_kg,
    estimated_co2e_location_kg, co2e_location_yearly_kg, windows_with_estimates,
    estimated_facility_energy_kwh, estimated_co2e_market_kg, embodied_co2e_kg)
SELECT w.day, w.model_name, w.model_version, w.team, SUBSTR(w.day, 1, 7), w.windows,
       w.requests, w.energy_kwh, w.facility_energy_kwh, w.co2e_location_kg, w.co2e_market_kg,
       w.estimated_co2e_location_kg, w.co2e_location_yearly_kg, w.windows_with_estimates,
       w.estimated_facility_energy_kwh, w.estimated_co2e_market_kg, e.embodied_co2e_kg
FROM (SELECT day, model_name, model_version, team, SUM(windows) AS windows,
             COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(energy_kwh), 0) AS energy_kwh,
             COALESCE(SUM(facility_energy_kwh), 0) AS facility_energy_kwh,
             COALESCE(SUM(co2e_location_kg), 0) AS co2e_location_kg,
             COALESCE(SUM(co2e_market_kg), 0) AS co2e_market_kg,
             COALESCE(SUM(estimated_co2e_location_kg), 0) AS estimated_co2e_location_kg,
             COALESCE(SUM(co2e_location_yearly_kg), 0) AS co2e_location_yearly_kg,
             SUM(windows_with_estimates) AS windows_with_estimates,
             COALESCE(SUM(estimated_facility_energy_kwh), 0) AS estimated_facility_energy_kwh,
             COALESCE(SUM(estimated_co2e_market_kg), 0) AS estimated_co2e_market_kg
      FROM {temp} GROUP BY day, model_name, model_version, team) w
LEFT JOIN (SELECT {day} AS day, COALESCE(model_name, '(unknown)') AS model_name,
                  COALESCE(model_version, 0) AS model_version,
                  COALESCE(team, 'unassigned') AS team, SUM(embodied_co2e_kg) AS embodied_co2e_kg
           FROM v_window_embodied WHERE {windows} GROUP BY 1, 2, 3, 4) e
    ON e.day = w.day AND e.model_name = w.model_name AND e.model_version = w.model_version
   AND e.team = w.team
"""

_SCOPE2_DAY = f"""
INSERT INTO rollup_scope2_day (day, month, team, zone, factor_year, windows,
    facility_energy_kwh, location_intensity_g_per_kwh, location_factor_source,
    location_factor_version, co2e_location_kg, market_intensity_g_per_kwh, market_factor_source,
    market_instrument, market_is_location_fallback, co2e_market_kg, intensity_method,
    co2e_location_yearly_kg)
SELECT day, SUBSTR(day, 1, 7), team, zone, factor_year, SUM(windows), {SCOPE2_FIGURES}
FROM {{temp}} GROUP BY day, {FACTOR_GROUP}
"""

_TEAM_MONTH = """
INSERT INTO rollup_team_month (month, team, activity, records, records_with_estimates,
    requests, energy_kwh, facility_energy_kwh, estimated_facility_energy_kwh, co2e_location_kg,
    co2e_market_kg, estimated_co2e_location_kg, estimated_co2e_market_kg,
    co2e_location_yearly_kg, embodied_co2e_kg)
SELECT month, team, 'inference', SUM(windows), COALESCE(SUM(windows_with_estimates), 0),
       COALESCE(SUM(requests), 0), COALESCE(SUM(energy_kwh), 0),
       COALESCE(SUM(facility_energy_kwh), 0), COALESCE(SUM(estimated_facility_energy_kwh), 0),
       COALESCE(SUM(co2e_location_kg), 0), COALESCE(SUM(co2e_market_kg), 0),
       COALESCE(SUM(estimated_co2e_location_kg), 0), COALESCE(SUM(estimated_co2e_market_kg), 0),
       COALESCE(SUM(co2e_location_yearly_kg), 0), COALESCE(SUM(embodied_co2e_kg), 0)
FROM rollup_inference_daily WHERE {months}
GROUP BY month, team
"""

_SCOPE2_MONTH = f"""{SCOPE2_MONTH_INSERT}
SELECT month, 'inference', team, zone, factor_year, SUM(windows), 0, {SCOPE2_FIGURES}
FROM rollup_scope2_day WHERE {{months}}
GROUP BY month, {FACTOR_GROUP}
"""


def dirty_days(
    conn: Connection, *, windows_mark: int | None, loaded_mark: Any, loaded_op: str
) -> set[str]:
    """UTC days of the windows inserted (``id`` past the mark) or re-loaded since the mark.

    ``loaded_op`` is ``>`` or ``>=`` (SQLite's one-second ``loaded_at`` steps, as for runs).
    """
    where, params = "id > :id_mark", {"id_mark": windows_mark or 0}
    if loaded_mark is not None:
        where += f" OR loaded_at {loaded_op} :loaded_mark"
        params["loaded_mark"] = loaded_mark
    day = day_sql(conn.dialect.name, "window_start")
    rows = conn.execute(
        text(f"SELECT DISTINCT {day} FROM inference_windows WHERE {where}"),  # noqa: S608
        params,
    )
    return {r[0] for r in rows if r[0]}


def grouped_sql(dialect: str, windows: str) -> str:
    """The query that reads ``inference_co2e``'s windows selected by ``windows``."""
    source = f"inference_co2e WHERE {windows}"
    return _GROUPED.format(day=day_sql(dialect, "window_start"), source=source)


def days_grouped_sql(
    conn: Connection, ranges: list[tuple[str, str]], params: dict[str, Any]
) -> str:
    """The query that reads the windows of the day ``ranges``, their hours as one set.

    The hours are selected by a range of their key: the lowest to the highest id of the days'
    windows (one query), so PostgreSQL reads them through the primary key of the partitions.
    """
    dialect = conn.dialect.name

    def windows(alias: str) -> str:
        return time_ranges_sql(dialect, f"{alias}.window_start", ranges, params, "w")

    lowest, highest = conn.execute(
        text(f"SELECT MIN(id), MAX(id) FROM inference_windows w WHERE {windows('w')}"),  # noqa: S608
        params,
    ).one()
    params["pk_lo"], params["pk_hi"] = lowest or 0, highest or 0
    sql = windows_sql(
        dialect, windows=windows, record_pks="eh.record_pk >= :pk_lo AND eh.record_pk <= :pk_hi"
    )
    return _GROUPED.format(day=day_sql(dialect, "start_time"), source=f"({sql}) c")


@contextmanager
def _planner_settings(conn: Connection) -> Iterator[None]:
    """:data:`PG_SETTINGS` for the statements inside, then the settings before (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = {
        name: conn.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one()
        for name in PG_SETTINGS
    }
    for name, value in PG_SETTINGS.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield  # (on an error the transaction rolls back, and the settings with it)
    for name, value in before.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def refresh_windows(conn: Connection, days: list[str] | None) -> list[str]:
    """Rebuild the windows' rollup rows of ``days`` (``None``: every day), then their months.

    Returns:
        The months (``YYYY-MM``) whose inference rows were rebuilt (``[]`` for every month).
    """
    if days is not None and not days:
        return []
    dialect = conn.dialect.name
    params: dict[str, Any] = {}
    with _planner_settings(conn):
        if days is None:
            windows, keys = "1 = 1", "1 = 1"
            grouped = grouped_sql(dialect, windows)
        else:
            ranges = day_ranges(days)
            windows = time_ranges_sql(dialect, "window_start", ranges, params, "w")
            keys = key_ranges_sql("day", ranges, params, "d")
            grouped = days_grouped_sql(conn, ranges, params)
        conn.execute(text(f"DELETE FROM rollup_inference_daily WHERE {keys}"), params)
        conn.execute(text(f"DELETE FROM rollup_scope2_day WHERE {keys}"), params)
        day = day_sql(dialect, "window_start")
        conn.execute(text(f"DROP TABLE IF EXISTS {WINDOWS_TEMP}"))
        conn.execute(text(f"CREATE TEMPORARY TABLE {WINDOWS_TEMP} AS {grouped}"), params)
        conn.execute(text(_DAILY.format(temp=WINDOWS_TEMP, day=day, windows=windows)), params)
        conn.execute(text(_SCOPE2_DAY.format(temp=WINDOWS_TEMP)), params)
        conn.execute(text(f"DROP TABLE {WINDOWS_TEMP}"))
    months = None if days is None else sorted({d[:7] for d in days})
    rebuild_months(conn, months)
    return months or []


def rebuild_months(conn: Connection, months: list[str] | None) -> None:
    """Rebuild the inference rows of ``rollup_team_month`` and ``rollup_scope2_month``.

    Each is the sum of its month's daily rows (``None``: every month).
    """
    params: dict[str, Any] = {}
    if months is None:
        in_months = "1 = 1"
    else:
        in_months = key_ranges_sql("month", [(m, m) for m in months], params, "m")
    for table in ("rollup_team_month", "rollup_scope2_month"):
        conn.execute(
            text(f"DELETE FROM {table} WHERE activity = 'inference' AND {in_months}"),  # noqa: S608
            params,
        )
    conn.execute(text(_TEAM_MONTH.format(months=in_months)), params)
    conn.execute(text(_SCOPE2_MONTH.format(months=in_months)), params)
