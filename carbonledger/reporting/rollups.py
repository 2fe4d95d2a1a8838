"""Incremental refresh of the reporting rollups, called by the ETL inside its transaction.

The rollups (``carbonledger.ledger.rollup_models``) are the views' figures pre-aggregated by
month or day, so a page reads thousands of rows, not millions. A refresh recomputes only what
changed since the last one:

* training: the months of runs loaded, updated or re-attributed since the watermark
  (``runs.loaded_at``) and of runs that joined a model's lifecycle through a new version
  (lineage), read from the views by ``start_time`` range;
* serving windows: the UTC days of windows inserted or re-loaded since the watermarks
  (``inference_windows.id``, ``inference_windows.loaded_at``), read by ``window_start``
  range, and the monthly inference rows of their months summed from the daily rows
  (``carbonledger.reporting.rollup_windows``);
* ``rollup_ranges`` (the parts of a total with its ranges) follows both: its training rows
  with the months', its serving rows with the days' (``carbonledger.reporting.rollup_ranges``).

A new or restated emission factor changes every figure: full rebuild.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from carbonledger.reporting import rollup_ranges
from carbonledger.reporting.periods import next_month_start
from carbonledger.reporting.rollup_sql import (
    FACTOR_GROUP,
    SCOPE2_FIGURES,
    SCOPE2_MONTH_INSERT,
    key_ranges_sql,
    month_sql,
    time_ranges_sql,
    weighted_intensity_sql,
)
from carbonledger.reporting.rollup_windows import dirty_days, refresh_windows

__all__ = [
    "ROLLUP_TABLES",
    "RefreshSummary",
    "month_sql",
    "refresh_rollups",
    "weighted_intensity_sql",
]

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

# v_scope2's training rows pre-aggregated, with the count of runs and of unmetered runs.
_SCOPE2_TRAINING = f"""{SCOPE2_MONTH_INSERT}
SELECT month, 'training', team, zone, factor_year, COUNT(*),
       SUM(CASE WHEN metering = 'unmetered' THEN 1 ELSE 0 END), {SCOPE2_FIGURES}
FROM cl_rollup_runs
WHERE kind <> 'inference'
GROUP BY month, {FACTOR_GROUP}
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

ROLLUP_TABLES = (
    "rollup_team_month",
    "rollup_model_month",
    "rollup_inference_daily",
    "rollup_scope2_day",
    "rollup_scope2_month",
    rollup_ranges.TABLE,
)


@dataclass(frozen=True, slots=True)
class RefreshSummary:
    """What a refresh did: a ``full`` rebuild, or what it recomputed.

    ``months``: every month with recomputed rows (its training runs, or its inference rows
    summed again from its days); ``days``: the UTC days whose windows were read again.
    """

    full: bool
    months: tuple[str, ...]
    days: tuple[str, ...] = ()


_STATE_COLUMNS = (
    "runs_loaded_at",
    "factors_max_id",
    "factors_count",
    "versions_max_id",
    "windows_max_id",
    "windows_loaded_at",
)


def _marks(conn: Connection) -> dict[str, Any]:
    """What the last refresh saw: a factor version added anywhere moves ``factors_max_id``.

    (``factors_max_id`` is the sum of the three factor tables' highest ids.)

    ``factors_count`` catches a deleted yearly or embodied factor (small tables). Hourly
    factors are append-only (an import or seed adds a version and clears ``is_current`` on
    the old one, so the id moves) and are not counted: a count of current hourly factors is a
    scan of ~0.5 M rows per zone set, the bulk of a no-change pass. Rows deleted by hand are
    picked up by ``carbonledger etl --full`` (a full rebuild).
    """
    row = conn.execute(
        text(
            "SELECT (SELECT MAX(loaded_at) FROM runs), (SELECT MAX(id) FROM emission_factors) "
            "+ (SELECT COALESCE(MAX(id), 0) FROM hourly_emission_factors) "
            "+ (SELECT COALESCE(MAX(id), 0) FROM embodied_factors), "
            "(SELECT COUNT(*) FROM emission_factors) + (SELECT COUNT(*) FROM embodied_factors), "
            "(SELECT MAX(id) FROM model_versions), "
            "(SELECT MAX(id) FROM inference_windows), "
            "(SELECT MAX(loaded_at) FROM inference_windows)"
        )
    ).one()
    return dict(zip(_STATE_COLUMNS, row, strict=True))


def refresh_rollups(conn: Connection, *, full: bool = False) -> RefreshSummary:
    """Bring the rollups up to date with the ledger, in ``conn``'s transaction.

    Args:
        conn: a connection inside a transaction (the ETL's).
        full: rebuild every rollup from the views instead of the changed months and days.

    Returns:
        Whether it rebuilt everything, and otherwise which months and days it recomputed.
    """
    marks = _marks(conn)
    state = conn.execute(
        text(f"SELECT {', '.join(_STATE_COLUMNS)}, refreshed_at FROM rollup_state WHERE id = 1")
    ).first()
    factors_changed = state is None or (state[1], state[2]) != (
        marks["factors_max_id"],
        marks["factors_count"],
    )
    if full or factors_changed:
        for table in ROLLUP_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (constant names)
        _insert_training(conn, runs="1 = 1", params={}, days=None)
        refresh_windows(conn, None)
        rollup_ranges.refresh_windows(conn, None)
        summary = RefreshSummary(True, ())
    else:
        assert state is not None
        months = _dirty_months(conn, conn.dialect.name, state)
        if months:
            _recompute_training(conn, sorted(months))
        days = sorted(
            dirty_days(
                conn,
                windows_mark=state[4],
                loaded_mark=state[5],
                loaded_op=_op(conn, state[5], state[6]),
            )
        )
        window_months = refresh_windows(conn, days)
        rollup_ranges.refresh_windows(conn, days)
        summary = RefreshSummary(False, tuple(sorted(months | set(window_months))), tuple(days))
    _write_state(conn, state is not None, marks)
    log.info(
        "rollups: refreshed %s",
        "fully" if summary.full else f"months {list(summary.months)}, days {list(summary.days)}",
    )
    return summary


def _mark_second_closed(mark: Any, refreshed_at: Any) -> bool:
    """Whether no later load can share a ``loaded_at`` mark's timestamp (SQLite: 1 s steps).

    SQLite's CURRENT_TIMESTAMP has one-second steps, so a load in the same second as the mark
    writes the same ``loaded_at``: then ``>=`` must re-check that second. When the previous
    refresh ran in a later second than the mark, every later load (the ETL is one writer at a
    time) has a larger ``loaded_at`` and ``>`` is exact, so a no-change pass recomputes nothing.
    """
    if mark is None or refreshed_at is None:
        return False
    return str(refreshed_at)[:19].replace("T", " ") > str(mark)[:19].replace("T", " ")


def _op(conn: Connection, mark: Any, refreshed_at: Any) -> str:
    """The comparison that finds rows loaded after a ``loaded_at`` mark."""
    closed = conn.dialect.name == "postgresql" or _mark_second_closed(mark, refreshed_at)
    return ">" if closed else ">="


def _dirty_months(conn: Connection, dialect: str, state: Any) -> set[str]:
    # A serving run's row moves with every window it logs, but no rollup counts serving runs
    # (their windows carry the figures): only training runs dirty a month here.
    runs_mark, versions_mark = state[0], state[3]
    months: set[str] = set()
    if runs_mark is not None:
        rows = conn.execute(
            text(
                f"SELECT DISTINCT {month_sql(dialect, 'start_time')} FROM runs "
                f"WHERE loaded_at {_op(conn, runs_mark, state[6])} :mark "
                "AND kind <> 'inference'"
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
    return months


def _recompute_training(conn: Connection, months: list[str]) -> None:
    """Rebuild the training rows of ``months`` from the runs started in them."""
    params: dict[str, Any] = {}
    days = [(f"{m}-01", f"{next_month_start(m) - timedelta(days=1):%Y-%m-%d}") for m in months]
    runs = time_ranges_sql(conn.dialect.name, "start_time", days, params, "r")
    in_months = key_ranges_sql("month", [(m, m) for m in months], params, "m")
    training = f"activity = 'training' AND {in_months}"
    conn.execute(text(f"DELETE FROM rollup_team_month WHERE {training}"), params)
    conn.execute(text(f"DELETE FROM rollup_model_month WHERE {in_months}"), params)
    conn.execute(text(f"DELETE FROM rollup_scope2_month WHERE {training}"), params)
    rollup_ranges.delete_training(conn, in_months, params)
    _insert_training(conn, runs=runs, params=params, days=days)


def _insert_training(
    conn: Connection, *, runs: str, params: dict[str, Any], days: list[tuple[str, str]] | None
) -> None:
    """Insert the training rows of the runs selected by ``runs`` (a ``start_time`` filter).

    ``days``: the day ranges ``runs`` selects (``None``: every run).
    """
    conn.execute(text("DROP TABLE IF EXISTS cl_rollup_runs"))
    conn.execute(text(_RUN_ROWS.format(runs=runs)), params)
    conn.execute(text(_TEAM_TRAINING))
    conn.execute(text(_MODEL_MONTH))
    conn.execute(text(_SCOPE2_TRAINING))
    rollup_ranges.insert_training(conn, days)
    conn.execute(text("DROP TABLE IF EXISTS cl_rollup_runs"))


def _write_state(conn: Connection, exists: bool, marks: dict[str, Any]) -> None:
    params = {**marks, "now": datetime.now(UTC)}
    if exists:
        sets = ", ".join(f"{c} = :{c}" for c in _STATE_COLUMNS)
        conn.execute(
            text(f"UPDATE rollup_state SET {sets}, refreshed_at = :now WHERE id = 1"), params
        )
    else:
        cols = ", ".join(_STATE_COLUMNS)
        values = ", ".join(f":{c}" for c in _STATE_COLUMNS)
        conn.execute(
            text(f"INSERT INTO rollup_state (id, {cols}, refreshed_at) VALUES (1, {values}, :now)"),
            params,
        )
