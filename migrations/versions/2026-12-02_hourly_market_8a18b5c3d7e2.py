"""hourly market-based matching; Scope 2 and daily inference grouped by method, not by value

* ``activity_co2e``: where an organisation has imported hourly contractual factors
  (``carbonledger db import-factors``, basis ``market``), each hour of a record's energy meets
  that hour's contractual factor; its other hours take the yearly contractual factor of the
  zone, else their own location-based factor (hourly, profile estimate or yearly). The
  columns are unchanged: ``market_factor_source`` names the hourly source (``+`` the yearly
  contract's where that filled some hours), ``market_factor_version`` stays the yearly
  contract's.
* ``v_inference_daily`` and ``v_scope2`` no longer group by the intensity value, which with
  hourly factors differs per record (nearly one row per window): they group by the factor's
  zone, year, method and source, and their intensities are the energy-weighted means
  (CO2e x 1000 / facility energy). ``v_scope2`` gains ``intensity_method`` and
  ``co2e_location_yearly_kg``; ``rollup_scope2_month`` too (rebuilt on the next refresh).

Revision ID: 8a18b5c3d7e2
Revises: 7e17c3d5f9a1
Create Date: 2026-12-02 05:00:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "8a18b5c3d7e2"
down_revision: str | None = "7e17c3d5f9a1"
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


# Per record, the hours that have a current hourly contractual factor: their energy, their
# market grams, and the location-based grams of the same hours (hourly factor, else the
# profile ratio or 1.0 to be multiplied by the record's yearly factor), so the remaining hours'
# location grams are the record's total minus these.
_MARKET_HOURS = """
), k AS (
    SELECT eh.record_kind, eh.record_pk,
           SUM(eh.facility_energy_kwh) AS market_hourly_kwh,
           SUM(eh.facility_energy_kwh * hm.intensity_g_per_kwh) AS market_hourly_g,
           SUM(CASE WHEN hf.id IS NOT NULL
                    THEN eh.facility_energy_kwh * hf.intensity_g_per_kwh ELSE 0.0 END)
               AS matched_location_hourly_g,
           SUM(CASE WHEN hf.id IS NULL THEN eh.facility_energy_kwh * COALESCE(p.ratio, 1.0)
                    ELSE 0.0 END) AS matched_location_yearly_kwh,
           MIN(hm.source) AS market_hourly_source
    FROM hourly_emission_factors hm
    JOIN activity_energy_hours eh ON eh.zone = hm.zone AND eh.utc_hour = hm.utc_hour
    LEFT JOIN hourly_emission_factors hf
        ON hf.zone = eh.zone AND hf.basis = 'location' AND hf.utc_hour = eh.utc_hour
       AND hf.is_current
    LEFT JOIN hourly_profiles p
        ON p.zone = eh.zone AND p.basis = 'location' AND p.profile_cell = eh.profile_cell
    WHERE hm.basis = 'market' AND hm.is_current
    GROUP BY eh.record_kind, eh.record_pk
), mk AS (
    SELECT m.*,
           m.facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
           m.facility_energy_kwh * m.location_yearly_intensity_g_per_kwh / 1000.0
               AS co2e_location_yearly_kg,
           m.estimated_facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0
               AS estimated_co2e_location_kg,
           m.inclusive_facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0
               AS inclusive_co2e_location_kg,
           CASE WHEN k.market_hourly_kwh > 0 AND m.facility_energy_kwh > 0
                THEN (k.market_hourly_g
                      + CASE WHEN mkt.id IS NOT NULL
                             THEN (m.facility_energy_kwh - k.market_hourly_kwh)
                                  * mkt.intensity_g_per_kwh
                             ELSE m.facility_energy_kwh * m.location_intensity_g_per_kwh
                                  - k.matched_location_hourly_g
                                  - k.matched_location_yearly_kwh
                                    * m.location_yearly_intensity_g_per_kwh END)
                     / m.facility_energy_kwh
                ELSE COALESCE(mkt.intensity_g_per_kwh, m.location_intensity_g_per_kwh)
           END AS market_intensity_g_per_kwh,
           mkt.version AS market_factor_version,
           CAST(CASE WHEN k.market_hourly_kwh > 0 AND mkt.id IS NOT NULL
                          AND k.market_hourly_kwh < m.facility_energy_kwh
                         THEN k.market_hourly_source || '+' || mkt.source
                     WHEN k.market_hourly_kwh > 0 THEN k.market_hourly_source
                     ELSE mkt.source END AS VARCHAR(200)) AS market_factor_source,
           mkt.instrument AS market_instrument,
           CASE WHEN mkt.id IS NULL AND COALESCE(k.market_hourly_kwh, 0.0) <= 0 THEN 1 ELSE 0
           END AS market_is_location_fallback
    FROM m
    LEFT JOIN k ON k.record_kind = m.record_kind AND k.record_pk = m.record_pk
    LEFT JOIN current_emission_factors mkt
        ON mkt.zone = m.zone AND mkt.year = m.activity_year AND mkt.basis = 'market'
)
SELECT mk.*,
       mk.facility_energy_kwh * mk.market_intensity_g_per_kwh / 1000.0 AS co2e_market_kg,
       mk.estimated_facility_energy_kwh * mk.market_intensity_g_per_kwh / 1000.0
           AS estimated_co2e_market_kg,
       mk.inclusive_facility_energy_kwh * mk.market_intensity_g_per_kwh / 1000.0
           AS inclusive_co2e_market_kg
FROM mk
"""

# An intensity of a group: the energy-weighted mean of its records' intensities.
_WEIGHTED = (
    "CASE WHEN SUM(facility_energy_kwh) > 0 THEN SUM({co2e}) * 1000.0 / SUM(facility_energy_kwh)"
    " ELSE MAX({intensity}) END"
)
_LOCATION = _WEIGHTED.format(co2e="co2e_location_kg", intensity="location_intensity_g_per_kwh")
_MARKET = _WEIGHTED.format(co2e="co2e_market_kg", intensity="market_intensity_g_per_kwh")

V_INFERENCE_DAILY = f"""
{{create}} VIEW v_inference_daily AS
SELECT {{day}} AS day, {{month}} AS month,
       COALESCE(model_name, '(unknown)') AS model_name,
       COALESCE(model_version, 0) AS model_version,
       COALESCE(team, 'unassigned') AS team, zone, activity_year, factor_year,
       COUNT(*) AS windows, CAST(SUM(requests) AS BIGINT) AS requests,
       SUM(energy_kwh) AS energy_kwh, SUM(facility_energy_kwh) AS facility_energy_kwh,
       SUM(estimated_facility_energy_kwh) AS estimated_facility_energy_kwh,
       {_LOCATION} AS location_intensity_g_per_kwh,
       location_factor_source, location_factor_version,
       SUM(co2e_location_kg) AS co2e_location_kg,
       SUM(co2e_location_yearly_kg) AS co2e_location_yearly_kg,
       SUM(estimated_co2e_location_kg) AS estimated_co2e_location_kg,
       {_MARKET} AS market_intensity_g_per_kwh, market_factor_source, market_instrument,
       market_is_location_fallback,
       SUM(co2e_market_kg) AS co2e_market_kg,
       SUM(estimated_co2e_market_kg) AS estimated_co2e_market_kg,
       CASE WHEN SUM(requests) > 0 THEN SUM(co2e_location_kg) * 1000.0 / SUM(requests) END
           AS co2e_location_kg_per_1000_requests
FROM inference_co2e
GROUP BY {{day}}, {{month}}, COALESCE(model_name, '(unknown)'), COALESCE(model_version, 0),
         COALESCE(team, 'unassigned'), zone, activity_year, factor_year,
         location_factor_source, location_factor_version, market_factor_source,
         market_instrument, market_is_location_fallback
"""

_SCOPE2_GROUP = """month, team, zone, factor_year, intensity_method, location_factor_source,
         location_factor_version, market_factor_source, market_instrument,
         market_is_location_fallback"""

V_SCOPE2 = f"""
{{create}} VIEW v_scope2 AS
SELECT month, 'training' AS activity, team, zone, factor_year,
       SUM(facility_energy_kwh) AS facility_energy_kwh,
       {_LOCATION} AS location_intensity_g_per_kwh,
       location_factor_source, location_factor_version,
       SUM(co2e_location_kg) AS co2e_location_kg,
       {_MARKET} AS market_intensity_g_per_kwh, market_factor_source, market_instrument,
       market_is_location_fallback, SUM(co2e_market_kg) AS co2e_market_kg,
       intensity_method, SUM(co2e_location_yearly_kg) AS co2e_location_yearly_kg
FROM v_run_emissions WHERE kind <> 'inference'
GROUP BY {_SCOPE2_GROUP}
UNION ALL
SELECT month, 'inference', team, zone, factor_year, SUM(facility_energy_kwh),
       {_LOCATION}, location_factor_source, location_factor_version,
       SUM(co2e_location_kg), {_MARKET}, market_factor_source,
       market_instrument, market_is_location_fallback, SUM(co2e_market_kg),
       intensity_method, SUM(co2e_location_yearly_kg)
FROM (SELECT {{month}} AS month, COALESCE(team, 'unassigned') AS team, zone, factor_year,
             intensity_method, location_factor_source, location_factor_version,
             market_factor_source, market_instrument, market_is_location_fallback,
             facility_energy_kwh, location_intensity_g_per_kwh, market_intensity_g_per_kwh,
             co2e_location_kg, co2e_market_kg, co2e_location_yearly_kg
      FROM inference_co2e) w
GROUP BY {_SCOPE2_GROUP}
"""

_ROLLUP_COLUMNS = (("intensity_method", sa.String(length=32)), ("co2e_location_yearly_kg", sa.Double()))


def _formats(dialect: str, one_truth) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "day": one_truth._fmt(dialect, "window_start", "day"),
        "month": one_truth._fmt(dialect, "window_start", "month"),
    }


def _activity_co2e(dialect: str, sql: str, one_truth) -> None:  # type: ignore[no-untyped-def]
    """Replace ``activity_co2e`` in place (same columns), its dependents left standing."""
    year = (
        "EXTRACT(YEAR FROM w.window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', w.window_start)"
    )
    sql = sql.format(run_arm=one_truth._RUN_ARM, window_arm=one_truth._WINDOW_ARM.format(year=year))
    if dialect == "postgresql":
        op.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
    else:  # SQLite resolves a view's dependents by name when they are read
        op.execute("DROP VIEW activity_co2e")
        op.execute(sql)


def _replace(dialect: str, name: str, sql: str) -> None:
    if dialect == "postgresql":
        op.execute(sql.format(create="CREATE OR REPLACE"))
    else:
        op.execute(f"DROP VIEW {name}")
        op.execute(sql.format(create="CREATE"))


def _security_invoker(dialect: str) -> None:
    # Team row-level security (7e4a1b9c2d53): views are read with the caller's rights.
    if dialect == "postgresql":
        for view in ("activity_co2e", "v_inference_daily", "v_scope2"):
            op.execute(f"ALTER VIEW {view} SET (security_invoker = true)")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    hourly = _previous("hourly", "4b13c7d2e9a1")
    prefix = hourly.ACTIVITY_CO2E[: hourly.ACTIVITY_CO2E.index("\nSELECT m.*,")].rstrip()
    assert prefix.endswith(")")
    _activity_co2e(dialect, prefix[:-1] + _MARKET_HOURS, one_truth)
    formats = _formats(dialect, one_truth)
    _replace(dialect, "v_inference_daily", V_INFERENCE_DAILY.format(create="{create}", **formats))
    _replace(dialect, "v_scope2", V_SCOPE2.format(create="{create}", month=formats["month"]))
    with op.batch_alter_table("rollup_scope2_month") as batch:
        for name, type_ in _ROLLUP_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.execute("DELETE FROM rollup_state")
    _security_invoker(dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    hourly = _previous("hourly", "4b13c7d2e9a1")
    with op.batch_alter_table("rollup_scope2_month") as batch:
        for name, _type in reversed(_ROLLUP_COLUMNS):
            batch.drop_column(name)
    op.execute("DELETE FROM rollup_state")
    # PostgreSQL cannot drop a view's columns in place: v_scope2 (nothing reads it) is rebuilt.
    op.execute("DROP VIEW v_scope2")
    _activity_co2e(dialect, hourly.ACTIVITY_CO2E, one_truth)
    daily = one_truth.V_INFERENCE_DAILY.replace(hourly._DAILY_OLD, hourly._DAILY_NEW)
    daily = daily.replace("CREATE VIEW", "{create} VIEW", 1)
    _replace(dialect, "v_inference_daily", daily.format(create="{create}", **_formats(dialect, one_truth)))
    op.execute(one_truth.V_SCOPE2)
    _security_invoker(dialect)
