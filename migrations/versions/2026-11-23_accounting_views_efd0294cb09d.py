"""accounting views

Revision ID: efd0294cb09d
Revises: 47277dd025f0
Create Date: 2026-11-23 00:45:03.464320
"""

from collections.abc import Sequence

from alembic import op


revision: str = 'efd0294cb09d'
down_revision: str | None = '47277dd025f0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Versioned SQL: a later change to a view is a new migration that replaces it.
CURRENT_EMISSION_FACTORS = """
CREATE VIEW current_emission_factors AS
SELECT ef.id, ef.zone, ef.country, ef.year, ef.basis, ef.intensity_g_per_kwh, ef.source,
       ef.licence, ef.instrument, ef.version, ef.valid_from
FROM emission_factors ef
WHERE ef.version = (
    SELECT MAX(e2.version) FROM emission_factors e2
    WHERE e2.zone = ef.zone AND e2.year = ef.year AND e2.basis = ef.basis
)
"""

# CO2e recomputed from activity data x the current factor version. A metered parent's figure
# includes its metered children (the plugin's inclusive totals): here energy_kwh and
# facility_energy_kwh are exclusive (parent minus its direct metered children, never below 0),
# so any sum over runs counts each kWh once; inclusive_facility_energy_kwh keeps the run's own. Location-based: the zone's
# factor for the run's year, else the latest earlier year, else the earliest year known.
# Market-based: the contractual factor for the zone and year, else location-based (flagged).
RUN_CO2E = """
CREATE VIEW run_co2e AS
WITH children AS (
    SELECT source_id, parent_run_id, SUM(energy_kwh) AS energy_kwh,
           SUM(facility_energy_kwh) AS facility_energy_kwh
    FROM runs
    WHERE parent_run_id IS NOT NULL AND metering = 'metered'
    GROUP BY source_id, parent_run_id
),
r AS (
    SELECT runs.id, runs.source_id, runs.run_id, runs.parent_run_id, runs.experiment_id,
           runs.kind, runs.status,
           runs.is_stale, runs.team, runs.model_name, runs.user_id, runs.start_time,
           runs.end_time, runs.activity_year, runs.metering, runs.energy_is_estimate,
           CASE WHEN ch.parent_run_id IS NULL OR runs.metering <> 'metered'
                THEN runs.energy_kwh
                WHEN runs.energy_kwh < ch.energy_kwh THEN 0.0
                ELSE runs.energy_kwh - ch.energy_kwh END AS energy_kwh,
           runs.pue,
           CASE WHEN ch.parent_run_id IS NULL OR runs.metering <> 'metered'
                THEN runs.facility_energy_kwh
                WHEN runs.facility_energy_kwh < ch.facility_energy_kwh THEN 0.0
                ELSE runs.facility_energy_kwh - ch.facility_energy_kwh END
               AS facility_energy_kwh,
           runs.facility_energy_kwh AS inclusive_facility_energy_kwh,
           runs.plugin_co2e_kg,
           runs.plugin_intensity_g_per_kwh,
           COALESCE(runs.grid_zone, 'WORLD') AS zone,
           COALESCE(
               (SELECT MAX(f.year) FROM emission_factors f
                WHERE f.zone = COALESCE(runs.grid_zone, 'WORLD') AND f.basis = 'location'
                  AND f.year <= runs.activity_year),
               (SELECT MIN(f.year) FROM emission_factors f
                WHERE f.zone = COALESCE(runs.grid_zone, 'WORLD') AND f.basis = 'location')
           ) AS factor_year
    FROM runs
    LEFT JOIN children ch ON ch.source_id = runs.source_id AND ch.parent_run_id = runs.run_id
)
SELECT r.id AS run_pk, r.source_id, r.run_id, r.parent_run_id, r.experiment_id, r.kind,
       r.status, r.is_stale,
       r.team, r.model_name, r.user_id, r.start_time, r.end_time, r.activity_year, r.metering,
       r.energy_is_estimate, r.energy_kwh, r.pue, r.facility_energy_kwh,
       r.inclusive_facility_energy_kwh, r.zone, r.factor_year,
       loc.intensity_g_per_kwh AS location_intensity_g_per_kwh,
       loc.version AS location_factor_version,
       loc.source AS location_factor_source,
       r.facility_energy_kwh * loc.intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
       COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh) AS market_intensity_g_per_kwh,
       mkt.version AS market_factor_version,
       CASE WHEN mkt.id IS NULL THEN 1 ELSE 0 END AS market_is_location_fallback,
       r.facility_energy_kwh * COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh)
           / 1000.0 AS co2e_market_kg,
       r.plugin_intensity_g_per_kwh,
       r.plugin_co2e_kg
FROM r
LEFT JOIN current_emission_factors loc
    ON loc.zone = r.zone AND loc.year = r.factor_year AND loc.basis = 'location'
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = r.zone AND mkt.year = r.activity_year AND mkt.basis = 'market'
"""


def upgrade() -> None:
    op.execute(CURRENT_EMISSION_FACTORS)
    op.execute(RUN_CO2E)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS run_co2e")
    op.execute("DROP VIEW IF EXISTS current_emission_factors")
