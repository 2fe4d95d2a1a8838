"""Incremental refresh of the reporting rollups, called by the ETL inside its transaction.

The rollups (``carbonledger.ledger.rollup_models``) are the views' figures pre-aggregated by
month or day, so a page reads thousands of rows, not millions. A refresh recomputes only the
months touched since the last one: months of runs loaded, updated or re-attributed since the
watermark (``runs.loaded_at``), months of runs that joined a model's lifecycle through a new
version (lineage), and months of new inference windows. A new or restated emission factor
changes every figure: full rebuild.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from carbonledger.reporting.periods import month_start, next_month_start

log = logging.getLogger(__name__)

_TEAM_TRAINING = """
INSERT INTO rollup_team_month (month, team, activity, records, records_with_estimates,
    requests, energy_kwh, facility_energy_kwh, estimated_facility_energy_kwh, co2e_location_kg,
    co2e_market_kg, estimated_co2e_location_kg, estimated_co2e_market_kg,
    co2e_location_yearly_kg, embodied_co2e_kg)
SELECT month, team, 'training', COUNT(*),
       SUM(CASE WHEN any_component_estimated THEN 1 ELSE 0 END), 0,
       COALESCE(SUM(energy_kwh), 0), COALESCE(SUM(facility_energy_kwh), 0),
       COALESCE(SUM(estimated_facility_energy_kwh), 0),
       COALESCE(SUM(co2e_location_kg), 0), COALESCE(SUM(co2e_market_kg), 0),
       COALESCE(SUM(estimated_co2e_location_kg), 0), COALESCE(SUM(estimated_co2e_market_kg), 0),
       COALESCE(SUM(co2e_location_yearly_kg), 0), COALESCE(SUM(embodied_co2e_kg), 0)
FROM cl_rollup_runs WHERE kind <> 'inference'
GROUP BY month, team
"""

_TEAM_INFERENCE = """
INSERT INTO rollup_team_month (month, team, activity, records, records_with_estimates,
    requests, energy_kwh, facility_energy_kwh, estimated_facility_energy_kwh, co2e_location_kg,
    co2e_market_kg, estimated_co2e_location_kg, estimated_co2e_market_kg,
    co2e_location_yearly_kg)
SELECT month, team, 'inference', COALESCE(SUM(windows), 0),
       SUM(CASE WHEN estimated_facility_energy_kwh > 0 THEN windows ELSE 0 END),
       COALESCE(SUM(requests), 0), COALESCE(SUM(energy_kwh), 0),
       COALESCE(SUM(facility_energy_kwh), 0), COALESCE(SUM(estimated_facility_energy_kwh), 0),
       COALESCE(SUM(co2e_location_kg), 0), COALESCE(SUM(co2e_market_kg), 0),
       COALESCE(SUM(estimated_co2e_location_kg), 0), COALESCE(SUM(estimated_co2e_market_kg), 0),
       COALESCE(SUM(co2e_location_yearly_kg), 0)
FROM v_inference_daily WHERE {months}
GROUP BY month, team
"""

# The training runs of each model come from v_lifecycle_runs, the one lifecycle definition.
_MODEL_MONTH = """
INSERT INTO rollup_model_month (model_name, team, month, runs, facility_energy_kwh,
    co2e_location_kg, co2e_market_kg, estimated_co2e_location_kg, co2e_location_yearly_kg,
    embodied_co2e_kg)
SELECT lr.model_name, e.team, e.month, COUNT(*),
       COALESCE(SUM(e.facility_energy_kwh), 0), COALESCE(SUM(e.co2e_location_kg), 0),
       COALESCE(SUM(e.co2e_market_kg), 0), COALESCE(SUM(e.estimated_co2e_location_kg), 0),
       COALESCE(SUM(e.co2e_location_yearly_kg), 0), COALESCE(SUM(e.embodied_co2e_kg), 0)
FROM v_lifecycle_runs lr JOIN cl_rollup_runs e ON e.run_pk = lr.run_pk
GROUP BY lr.model_name, e.team, e.month
"""

_INFERENCE_DAILY = """
INSERT INTO rollup_inference_daily (day, model_name, model_version, team, month, windows,
    requests, energy_kwh, facility_energy_kwh, co2e_location_kg, co2e_market_kg,
    estimated_co2e_location_kg, co2e_location_yearly_kg)
SELECT day, model_name, model_version, team, month, SUM(windows), COALESCE(SUM(requests), 0),
       COALESCE(SUM(energy_kwh), 0), COALESCE(SUM(facility_energy_kwh), 0),
       COALESCE(SUM(co2e_location_kg), 0), COALESCE(SUM(co2e_market_kg), 0),
       COALESCE(SUM(estimated_co2e_location_kg), 0), COALESCE(SUM(co2e_location_yearly_kg), 0)
FROM v_inference_daily WHERE {months}
GROUP BY day, model_name, model_version, team, month
"""


def weighted_intensity_sql(co2e: str, intensity: str) -> str:
    """SQL: the energy-weighted mean intensity of a group of records (or of rollup rows).

    With hourly factors every record has its own intensity, so Scope 2 groups by the factor's
    method and source and reports this mean (CO2e x 1000 / facility energy).
    """
    return (
        f"CASE WHEN SUM(facility_energy_kwh) > 0 THEN SUM({co2e}) * 1000.0 "
        f"/ SUM(facility_energy_kwh) ELSE MAX({intensity}) END"
    )


_SCOPE2_FIGURES = (
    "COALESCE(SUM(facility_energy_kwh), 0), "
    + weighted_intensity_sql("co2e_location_kg", "location_intensity_g_per_kwh")
    + ", location_factor_source, location_factor_version, COALESCE(SUM(co2e_location_kg), 0), "
    + weighted_intensity_sql("co2e_market_kg", "market_intensity_g_per_kwh")
    + ", market_factor_source, market_instrument, market_is_location_fallback, "
    "COALESCE(SUM(co2e_market_kg), 0), intensity_method, COALESCE(SUM(co2e_location_yearly_kg), 0)"
)
_SCOPE2_GROUP = (
    "month, team, zone, factor_year, intensity_method, location_factor_source, "
    "location_factor_version, market_factor_source, market_instrument, "
    "market_is_location_fallback"
)

# v_scope2 pre-aggregated, with the count of records and of unmetered training runs.
_SCOPE2 = f"""
INSERT INTO rollup_scope2_month (month, activity, team, zone, factor_year, records,
    unmetered_records, facility_energy_kwh, location_intensity_g_per_kwh,
    location_factor_source, location_factor_version, co2e_location_kg,
    market_intensity_g_per_kwh, market_factor_source, market_instrument,
    market_is_location_fallback, co2e_market_kg, intensity_method, co2e_location_yearly_kg)
SELECT month, 'training', team, zone, factor_year, COUNT(*),
       SUM(CASE WHEN metering = 'unmetered' THEN 1 ELSE 0 END), {_SCOPE2_FIGURES}
FROM cl_rollup_runs
WHERE kind <> 'inference'
GROUP BY {_SCOPE2_GROUP}
UNION ALL
SELECT month, 'inference', team, zone, factor_year, COUNT(*), 0, {_SCOPE2_FIGURES}
FROM (SELECT {{window_month}} AS month, COALESCE(team, 'unassigned') AS team, zone,
             factor_year, intensity_method, location_factor_source, location_factor_version,
             market_factor_source, market_instrument, market_is_location_fallback,
             facility_energy_kwh, location_intensity_g_per_kwh, market_intensity_g_per_kwh,
             co2e_location_kg, co2e_market_kg, co2e_location_yearly_kg
      FROM inference_co2e) w
WHERE {{months}}
GROUP BY {_SCOPE2_GROUP}
"""

# The rows of v_run_emissions the three run rollups aggregate (months being recomputed),
# computed once: each evaluation of the view joins factors, hours and embodied figures.
_RUN_ROWS = """
CREATE TEMPORARY TABLE cl_rollup_runs AS
SELECT run_pk, month, team, kind, metering, any_component_estimated, energy_kwh,
       facility_energy_kwh, estimated_facility_energy_kwh, co2e_location_kg, co2e_market_kg,
       estimated_co2e_location_kg, estimated_co2e_market_kg, co2e_location_yearly_kg,
       embodied_co2e_kg, zone, factor_year, location_intensity_g_per_kwh,
       location_factor_source, location_factor_version, market_intensity_g_per_kwh,
       market_factor_source, market_instrument, market_is_location_fallback, intensity_method
FROM v_run_emissions WHERE month IS NOT NULL AND {runs}
"""

# Serving windows' embodied CO2e (Scope 3, kept apart) on the inference rows just written.
_TEAM_INFERENCE_EMBODIED = """
UPDATE rollup_team_month SET embodied_co2e_kg = COALESCE((
    SELECT SUM(w.embodied_co2e_kg) FROM v_window_embodied w
    WHERE w.month = rollup_team_month.month
      AND COALESCE(w.team, 'unassigned') = rollup_team_month.team), 0)
WHERE activity = 'inference' AND {months}
"""

ROLLUP_TABLES = (
    "rollup_team_month",
    "rollup_model_month",
    "rollup_inference_daily",
    "rollup_scope2_month",
)


@dataclass(frozen=True, slots=True)
class RefreshSummary:
    """What a refresh did: ``full`` rebuild or the months it recomputed."""

    full: bool
    months: tuple[str, ...]


def month_sql(dialect: str, column: str) -> str:
    """SQL rendering ``column`` (a timestamp) as its UTC ``YYYY-MM``."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"


def _marks(conn: Connection) -> dict[str, Any]:
    row = conn.execute(
        text(
            "SELECT (SELECT MAX(loaded_at) FROM runs), (SELECT MAX(id) FROM emission_factors) "
            "+ (SELECT COALESCE(MAX(id), 0) FROM hourly_emission_factors) "
            "+ (SELECT COALESCE(MAX(id), 0) FROM embodied_factors), "
            "(SELECT COUNT(*) FROM emission_factors) "
            "+ (SELECT COUNT(*) FROM hourly_emission_factors WHERE is_current) "
            "+ (SELECT COUNT(*) FROM embodied_factors), "
            "(SELECT MAX(id) FROM model_versions), "
            "(SELECT MAX(id) FROM inference_windows)"
        )
    ).one()
    keys = ("runs_loaded_at", "factors_max_id", "factors_count", "versions_max_id")
    return dict(zip((*keys, "windows_max_id"), row, strict=True))


def refresh_rollups(conn: Connection, *, full: bool = False) -> RefreshSummary:
    """Bring the rollups up to date with the ledger, in ``conn``'s transaction.

    Args:
        conn: a connection inside a transaction (the ETL's).
        full: rebuild every rollup from the views instead of the changed months.

    Returns:
        Whether it rebuilt everything, and which months it recomputed otherwise.
    """
    dialect = conn.dialect.name
    marks = _marks(conn)
    state = conn.execute(
        text(
            "SELECT runs_loaded_at, factors_max_id, factors_count, versions_max_id, "
            "windows_max_id, refreshed_at FROM rollup_state WHERE id = 1"
        )
    ).first()
    factors_changed = state is None or (state[1], state[2]) != (
        marks["factors_max_id"],
        marks["factors_count"],
    )
    if full or factors_changed:
        for table in ROLLUP_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (constant names)
        _insert(conn, runs="1 = 1", months="1 = 1", params={})
        summary = RefreshSummary(True, ())
    else:
        months = _dirty_months(conn, dialect, state)
        if months:
            _recompute(conn, sorted(months))
        summary = RefreshSummary(False, tuple(sorted(months)))
    _write_state(conn, state is not None, marks)
    log.info("rollups: refreshed %s", "fully" if summary.full else list(summary.months))
    return summary


def _mark_second_closed(runs_mark: Any, refreshed_at: Any) -> bool:
    """Whether no later load can share the runs mark's timestamp (SQLite: 1 s steps).

    SQLite's CURRENT_TIMESTAMP has one-second steps, so a load in the same second as the mark
    writes the same ``loaded_at``: then ``>=`` must re-check that second. When the previous
    refresh ran in a later second than the mark, every later load (the ETL is one writer at a
    time) has a larger ``loaded_at`` and ``>`` is exact, so a no-change pass recomputes nothing.
    """
    if runs_mark is None or refreshed_at is None:
        return False
    return str(refreshed_at)[:19].replace("T", " ") > str(runs_mark)[:19].replace("T", " ")


def _dirty_months(conn: Connection, dialect: str, state: Any) -> set[str]:
    # A serving run's row moves with every window it logs, but no rollup counts serving runs
    # (their windows carry the figures): only training runs and new windows dirty a month.
    runs_mark, versions_mark, windows_mark = state[0], state[3], state[4]
    months: set[str] = set()
    op = ">" if dialect == "postgresql" or _mark_second_closed(runs_mark, state[5]) else ">="
    if runs_mark is not None:
        rows = conn.execute(
            text(
                f"SELECT DISTINCT {month_sql(dialect, 'start_time')} FROM runs "
                f"WHERE loaded_at {op} :mark AND kind <> 'inference'"
            ),
            {"mark": runs_mark},
        )
    else:
        rows = conn.execute(
            text(
                f"SELECT DISTINCT {month_sql(dialect, 'start_time')} FROM runs "
                "WHERE kind <> 'inference'"
            )
        )
    months.update(r[0] for r in rows if r[0])
    # A new version adds its run and every run nested under it to the model's lifecycle.
    rows = conn.execute(
        text(
            f"SELECT DISTINCT {month_sql(dialect, 'r.start_time')} FROM v_lifecycle_runs lr "
            "JOIN runs r ON r.id = lr.run_pk WHERE lr.via = 'lineage' AND lr.model_name IN "
            "(SELECT rm.name FROM model_versions mv JOIN registered_models rm "
            "ON rm.id = mv.registered_model_id WHERE mv.id > :mark)"
        ),
        {"mark": versions_mark or 0},
    )
    months.update(r[0] for r in rows if r[0])
    rows = conn.execute(
        text(
            f"SELECT DISTINCT {month_sql(dialect, 'window_start')} FROM inference_windows "
            "WHERE id > :mark"
        ),
        {"mark": windows_mark or 0},
    )
    months.update(r[0] for r in rows if r[0])
    return months


def _recompute(conn: Connection, months: list[str]) -> None:
    params: dict[str, Any] = {}
    ranges, names = [], []
    for i, month in enumerate(months):
        params[f"s{i}"], params[f"e{i}"], params[f"m{i}"] = (
            month_start(month),
            next_month_start(month),
            month,
        )
        ranges.append(f"(start_time >= :s{i} AND start_time < :e{i})")
        names.append(f":m{i}")
    if conn.dialect.name == "sqlite":  # timestamps are stored as 'YYYY-MM-DD HH:MM:SS...'
        for key, value in list(params.items()):
            if isinstance(value, datetime):
                params[key] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    in_months = f"month IN ({', '.join(names)})"
    conn.execute(text(f"DELETE FROM rollup_team_month WHERE {in_months}"), params)
    conn.execute(text(f"DELETE FROM rollup_model_month WHERE {in_months}"), params)
    conn.execute(text(f"DELETE FROM rollup_inference_daily WHERE {in_months}"), params)
    conn.execute(text(f"DELETE FROM rollup_scope2_month WHERE {in_months}"), params)
    _insert(conn, runs=f"({' OR '.join(ranges)})", months=in_months, params=params)


def _insert(conn: Connection, *, runs: str, months: str, params: dict[str, Any]) -> None:
    conn.execute(text("DROP TABLE IF EXISTS cl_rollup_runs"))
    conn.execute(text(_RUN_ROWS.format(runs=runs)), params)
    conn.execute(text(_TEAM_TRAINING))
    conn.execute(text(_TEAM_INFERENCE.format(months=months)), params)
    conn.execute(text(_TEAM_INFERENCE_EMBODIED.format(months=months)), params)
    conn.execute(text(_MODEL_MONTH))
    conn.execute(text(_INFERENCE_DAILY.format(months=months)), params)
    window_month = month_sql(conn.dialect.name, "window_start")
    conn.execute(text(_SCOPE2.format(months=months, window_month=window_month)), params)
    conn.execute(text("DROP TABLE IF EXISTS cl_rollup_runs"))


def _write_state(conn: Connection, exists: bool, marks: dict[str, Any]) -> None:
    params = {**marks, "now": datetime.now(UTC)}
    if exists:
        conn.execute(
            text(
                "UPDATE rollup_state SET runs_loaded_at = :runs_loaded_at, "
                "factors_max_id = :factors_max_id, factors_count = :factors_count, "
                "versions_max_id = :versions_max_id, windows_max_id = :windows_max_id, "
                "refreshed_at = :now WHERE id = 1"
            ),
            params,
        )
    else:
        conn.execute(
            text(
                "INSERT INTO rollup_state (id, runs_loaded_at, factors_max_id, factors_count, "
                "versions_max_id, windows_max_id, refreshed_at) VALUES (1, :runs_loaded_at, "
                ":factors_max_id, :factors_count, :versions_max_id, :windows_max_id, :now)"
            ),
            params,
        )
