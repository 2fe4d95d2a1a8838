"""The SQL of ``activity_co2e``: each record's CO2e from its activity data and the factors.

One definition of the per-record rules (the record's factor year, its location-based intensity
from hourly factors, profiles or the yearly factor, the market-based intensity and its
fallback, CO2e = facility energy x intensity), used in two places:

* :func:`view_sql`: the view itself, as migration ``a8b9c0d1e2f3`` creates it (the text of
  ``d4e5f6a7b8c9`` unchanged; a change to the rules here is a new migration, whose downgrade
  restores a copy of the text before it). On PostgreSQL a record's hours are read by a
  ``LEFT JOIN LATERAL`` bounded to the record's own UTC hours (an index probe per record: cheap
  for a page, a run's detail or a day of one version); on SQLite by one grouped pass.
* :func:`windows_sql`: the view's rows of the serving windows selected by a filter (the rollup
  refresh's days), their hours read as one set (``activity_energy_hours`` by a range of its
  key, hash-joined to the windows) instead of a probe per window: on PostgreSQL each probe pays
  ~4.6 us of run-time partition pruning, 720,000 of them for one day of 500 versions.

Both render the same record arms, factor-year ranges, per-hour aggregates and CO2e
expressions from the constants below; only the read of the hours differs, and
``tests/reporting/test_rollup_windows_sql.py`` checks that both give the same figures.
"""

from __future__ import annotations

from collections.abc import Callable

# The records: runs and serving windows, with the columns every later step reads.
_RUNS = """
SELECT 'run' AS record_kind, r.id AS record_pk, r.source_id, r.run_id, r.run_name,
       r.parent_run_id, r.experiment_id, r.kind, r.status, r.is_stale, r.team, r.team_rule,
       r.model_name, r.model_rule, CAST(NULL AS INTEGER) AS model_version, r.user_id,
       r.start_time, r.end_time, r.activity_year, r.metering, r.any_component_estimated,
       r.methods, r.duration_s, r.gpu_model, r.gpu_count, r.cpu_model, r.cpu_count,
       CAST(0 AS BIGINT) AS requests, CAST(NULL AS BIGINT) AS rows,
       CAST(NULL AS BIGINT) AS errors, CAST(NULL AS DOUBLE PRECISION) AS busy_s,
       CAST(NULL AS DOUBLE PRECISION) AS latency_p50_ms,
       CAST(NULL AS DOUBLE PRECISION) AS latency_p95_ms,
       CAST(NULL AS DOUBLE PRECISION) AS latency_p99_ms,
       r.energy_kwh, r.estimated_energy_kwh, r.inclusive_energy_kwh,
       CAST(NULL AS DOUBLE PRECISION) AS active_energy_kwh,
       CAST(NULL AS DOUBLE PRECISION) AS idle_energy_kwh,
       r.pue, r.facility_energy_kwh, r.inclusive_facility_energy_kwh,
       COALESCE(r.grid_zone, 'WORLD') AS zone,
       r.plugin_intensity_g_per_kwh, r.plugin_co2e_kg
FROM runs r{runs}"""

_WINDOWS = """
SELECT 'window', w.id, w.source_id, w.run_id, CAST(NULL AS VARCHAR(500)),
       CAST(NULL AS VARCHAR(64)), CAST(NULL AS VARCHAR(64)), 'inference',
       CAST(NULL AS VARCHAR(16)), CAST(NULL AS BOOLEAN), w.team, CAST(NULL AS VARCHAR(64)),
       w.model_name, CAST(NULL AS VARCHAR(64)), w.model_version, CAST(NULL AS VARCHAR(200)),
       w.window_start, w.window_end, COALESCE(w.activity_year, {window_year}),
       w.metering, w.any_component_estimated, w.methods, CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS VARCHAR(200)), CAST(NULL AS INTEGER), CAST(NULL AS VARCHAR(200)),
       CAST(NULL AS INTEGER), w.requests, w.rows, w.errors, w.busy_s, w.latency_p50_ms,
       w.latency_p95_ms, w.latency_p99_ms, w.energy_kwh, w.estimated_energy_kwh, w.energy_kwh,
       w.active_energy_kwh, w.idle_energy_kwh, w.pue, w.facility_energy_kwh,
       w.facility_energy_kwh, COALESCE(w.grid_zone, 'WORLD'), w.plugin_intensity_g_per_kwh,
       w.plugin_co2e_kg
FROM inference_windows w{windows}"""

# The zones' factor years as ranges (d4e5f6a7b8c9): a record of year Y in zone Z takes the
# year of Z whose range holds Y: [year, next year of Z), the earliest year's range open below
# (NULL from_year: it also serves a NULL record year), the latest's open above.
_FACTOR_YEARS = """
), fy AS (
    SELECT d.zone, d.year AS factor_year,
           CASE WHEN d.year > MIN(d.year) OVER (PARTITION BY d.zone) THEN d.year END
               AS from_year,
           LEAD(d.year) OVER (PARTITION BY d.zone ORDER BY d.year) AS to_year
    FROM (SELECT DISTINCT zone, year FROM emission_factors WHERE basis = 'location') d
), y AS (
    SELECT a.*,
           CASE WHEN a.energy_kwh > 0
                THEN a.facility_energy_kwh * COALESCE(a.estimated_energy_kwh, 0.0) / a.energy_kwh
                ELSE 0.0 END AS estimated_facility_energy_kwh,
           fy.factor_year
    FROM a
    LEFT JOIN fy
        ON fy.zone = a.zone
       AND (fy.from_year IS NULL OR a.activity_year >= fy.from_year)
       AND (fy.to_year IS NULL OR a.activity_year < fy.to_year
            OR (a.activity_year IS NULL AND fy.from_year IS NULL))
"""

# Per record, over its hours: the location-based figures and the hours with an hourly
# contractual factor (as 4b13c7d2e9a1 and 8a18b5c3d7e2), in one pass, over
# ``activity_energy_hours eh`` and the factors of each hour (_HOUR_FACTORS).
_HOUR_SUMS = """
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
           MIN(hm.source) AS market_hourly_source"""
_HOUR_FACTORS = """
    LEFT JOIN hourly_emission_factors hf
        ON hf.zone = eh.zone AND hf.basis = 'location' AND hf.utc_hour = eh.utc_hour
       AND hf.is_current
    LEFT JOIN hourly_profiles p
        ON p.zone = eh.zone AND p.basis = 'location' AND p.profile_cell = eh.profile_cell
    LEFT JOIN hourly_emission_factors hm
        ON hm.zone = eh.zone AND hm.basis = 'market' AND hm.utc_hour = eh.utc_hour
       AND hm.is_current"""

# A record's hours lie within its start and end hour (the ETL spreads energy only there);
# one hour of margin each side. CAST to BIGINT: a numeric bound would not reach the index.
_HOUR_OF = "CAST(FLOOR(EXTRACT(EPOCH FROM {t}) / 3600) AS BIGINT)"
_OWN_HOURS = (
    f"eh.utc_hour >= {_HOUR_OF.format(t='{start}')} - 1\n"
    f"          AND eh.utc_hour <= {_HOUR_OF.format(t='{end}')} + 1"
)

# PostgreSQL's view: the hours of each record, probed with it.
_LATERAL = f"""
    LEFT JOIN LATERAL (
        SELECT {_HOUR_SUMS}
    FROM activity_energy_hours eh{_HOUR_FACTORS}
        WHERE eh.record_kind = y.record_kind AND eh.record_pk = y.record_pk
          AND {_OWN_HOURS.format(start="y.start_time", end="y.end_time")}
    ) hh ON TRUE"""

# The hours of a set of records grouped once (SQLite's view, and windows_sql on both).
_GROUPED = f"""
), hh AS (
    SELECT eh.record_kind, eh.record_pk, {_HOUR_SUMS}
    FROM activity_energy_hours eh{{own}}{_HOUR_FACTORS}{{where}}
    GROUP BY eh.record_kind, eh.record_pk"""
_GROUPED_JOIN = """
    LEFT JOIN hh ON hh.record_kind = y.record_kind AND hh.record_pk = y.record_pk"""

# Location-based intensity and method of each record, from its factor year and hours.
_LOCATION = """
), m AS (
    SELECT y.*, hh.market_hourly_kwh, hh.market_hourly_g, hh.matched_location_hourly_g,
           hh.matched_location_yearly_kwh, hh.market_hourly_source,
           loc.intensity_g_per_kwh AS location_yearly_intensity_g_per_kwh,
           loc.version AS location_factor_version,
           CASE WHEN hh.facility_energy_kwh > 0 AND hh.finest > 0
                THEN (hh.hourly_g + (hh.profile_kwh + hh.yearly_kwh) * loc.intensity_g_per_kwh)
                     / hh.facility_energy_kwh
                ELSE loc.intensity_g_per_kwh END AS location_intensity_g_per_kwh,
           CASE WHEN hh.facility_energy_kwh > 0 AND hh.finest = 2 THEN 'hourly'
                WHEN hh.facility_energy_kwh > 0 AND hh.finest = 1
                    THEN 'hourly-profile-estimate'
                WHEN y.zone = 'WORLD' THEN 'world-default'
                ELSE 'yearly' END AS intensity_method,
           CASE WHEN hh.facility_energy_kwh > 0 AND hh.finest = 2 THEN hh.hourly_source
                WHEN hh.facility_energy_kwh > 0 AND hh.finest = 1
                    THEN 'hourly-profile-estimate+' || loc.source
                ELSE loc.source END AS location_factor_source,
           CASE WHEN hh.facility_energy_kwh > 0 AND hh.finest > 0
                THEN COALESCE(hh.hourly_licence, loc.licence)
                ELSE loc.licence END AS location_factor_licence,
           CASE WHEN hh.facility_energy_kwh > 0 AND hh.finest > 0 THEN hh.any_estimated
                ELSE 0 END AS location_factor_estimated
    FROM y
    LEFT JOIN current_emission_factors loc
        ON loc.zone = y.zone AND loc.year = y.factor_year AND loc.basis = 'location'{hours}"""

# Market-based intensity (hourly contractual factors, else the yearly one, else location).
_MARKET = """
), mk AS (
    SELECT m.*,
           m.facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
           m.facility_energy_kwh * m.location_yearly_intensity_g_per_kwh / 1000.0
               AS co2e_location_yearly_kg,
           m.estimated_facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0
               AS estimated_co2e_location_kg,
           m.inclusive_facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0
               AS inclusive_co2e_location_kg,
           CASE WHEN m.market_hourly_kwh > 0 AND m.facility_energy_kwh > 0
                THEN (m.market_hourly_g
                      + CASE WHEN mkt.id IS NOT NULL
                             THEN (m.facility_energy_kwh - m.market_hourly_kwh)
                                  * mkt.intensity_g_per_kwh
                             ELSE m.facility_energy_kwh * m.location_intensity_g_per_kwh
                                  - m.matched_location_hourly_g
                                  - m.matched_location_yearly_kwh
                                    * m.location_yearly_intensity_g_per_kwh END)
                     / m.facility_energy_kwh
                ELSE COALESCE(mkt.intensity_g_per_kwh, m.location_intensity_g_per_kwh)
           END AS market_intensity_g_per_kwh,
           mkt.version AS market_factor_version,
           CAST(CASE WHEN m.market_hourly_kwh > 0 AND mkt.id IS NOT NULL
                          AND m.market_hourly_kwh < m.facility_energy_kwh
                         THEN m.market_hourly_source || '+' || mkt.source
                     WHEN m.market_hourly_kwh > 0 THEN m.market_hourly_source
                     ELSE mkt.source END AS VARCHAR(200)) AS market_factor_source,
           mkt.instrument AS market_instrument,
           CASE WHEN mkt.id IS NULL AND COALESCE(m.market_hourly_kwh, 0.0) <= 0 THEN 1 ELSE 0
           END AS market_is_location_fallback
    FROM m
    LEFT JOIN current_emission_factors mkt
        ON mkt.zone = m.zone AND mkt.year = m.activity_year AND mkt.basis = 'market'
)
"""

# The view's columns in their order (CREATE OR REPLACE VIEW keeps a view's columns), then the
# market-based CO2e.
COLUMNS = (
    "record_kind",
    "record_pk",
    "source_id",
    "run_id",
    "run_name",
    "parent_run_id",
    "experiment_id",
    "kind",
    "status",
    "is_stale",
    "team",
    "team_rule",
    "model_name",
    "model_rule",
    "model_version",
    "user_id",
    "start_time",
    "end_time",
    "activity_year",
    "metering",
    "any_component_estimated",
    "methods",
    "duration_s",
    "gpu_model",
    "gpu_count",
    "cpu_model",
    "cpu_count",
    "requests",
    "rows",
    "errors",
    "busy_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "energy_kwh",
    "estimated_energy_kwh",
    "inclusive_energy_kwh",
    "active_energy_kwh",
    "idle_energy_kwh",
    "pue",
    "facility_energy_kwh",
    "inclusive_facility_energy_kwh",
    "zone",
    "plugin_intensity_g_per_kwh",
    "plugin_co2e_kg",
    "estimated_facility_energy_kwh",
    "factor_year",
    "location_yearly_intensity_g_per_kwh",
    "location_factor_version",
    "location_intensity_g_per_kwh",
    "intensity_method",
    "location_factor_source",
    "location_factor_licence",
    "location_factor_estimated",
    "co2e_location_kg",
    "co2e_location_yearly_kg",
    "estimated_co2e_location_kg",
    "inclusive_co2e_location_kg",
    "market_intensity_g_per_kwh",
    "market_factor_version",
    "market_factor_source",
    "market_instrument",
    "market_is_location_fallback",
)
_SELECT = (
    "SELECT "
    + ", ".join(f"mk.{c}" for c in COLUMNS)
    + """,
       mk.facility_energy_kwh * mk.market_intensity_g_per_kwh / 1000.0 AS co2e_market_kg,
       mk.estimated_facility_energy_kwh * mk.market_intensity_g_per_kwh / 1000.0
           AS estimated_co2e_market_kg,
       mk.inclusive_facility_energy_kwh * mk.market_intensity_g_per_kwh / 1000.0
           AS inclusive_co2e_market_kg
FROM mk"""
)


def _window_year(dialect: str) -> str:
    """SQL: the UTC year of ``w.window_start`` (a window without ``activity_year``)."""
    if dialect == "postgresql":
        return "CAST(EXTRACT(YEAR FROM w.window_start AT TIME ZONE 'UTC') AS INTEGER)"
    return "CAST(strftime('%Y', w.window_start) AS INTEGER)"


def _records(dialect: str, *, runs: str = "", windows: str = "") -> str:
    return (
        "WITH a AS (\n"
        + _RUNS.format(runs=runs)
        + "\n UNION ALL \n"
        + _WINDOWS.format(windows=windows, window_year=_window_year(dialect))
        + _FACTOR_YEARS
    )


def view_sql(dialect: str) -> str:
    """``CREATE VIEW activity_co2e AS ...`` for ``dialect`` (``postgresql`` or ``sqlite``)."""
    if dialect == "postgresql":
        hours = _LOCATION.format(hours=_LATERAL)
    else:
        hours = _GROUPED.format(own="", where="") + _LOCATION.format(hours=_GROUPED_JOIN)
    return f"CREATE VIEW activity_co2e AS\n{_records(dialect)}{hours}{_MARKET}{_SELECT}\n"


def windows_sql(dialect: str, *, windows: Callable[[str], str], record_pks: str) -> str:
    """``activity_co2e``'s rows of the serving windows selected by ``windows``, one query.

    Args:
        dialect: ``postgresql`` or ``sqlite``.
        windows: the filter selecting the windows, given the alias of ``inference_windows``
            (a sargable ``window_start`` range, so PostgreSQL reads only those partitions).
        record_pks: a filter on ``eh.record_pk`` holding every selected window's id (a range:
            the hours' primary key is ``record_kind, record_pk, utc_hour``).

    Returns:
        A query with the view's columns. The hours of the windows are read as one set and
        grouped per window; on PostgreSQL each window keeps only its own hours (as the view's
        lateral probe), by a join to the windows on their key; SQLite's view takes every hour
        of a record, and so does this query there.
    """
    own = ""
    if dialect == "postgresql":
        own = (
            f"\n    JOIN inference_windows bw ON bw.id = eh.record_pk AND {windows('bw')}\n"
            f"          AND {_OWN_HOURS.format(start='bw.window_start', end='bw.window_end')}"
        )
    hours = _GROUPED.format(
        own=own, where=f"\n    WHERE eh.record_kind = 'window' AND {record_pks}"
    )
    records = _records(dialect, runs=" WHERE 1 = 0", windows=f" WHERE {windows('w')}")
    return f"{records}{hours}{_LOCATION.format(hours=_GROUPED_JOIN)}{_MARKET}{_SELECT}"
