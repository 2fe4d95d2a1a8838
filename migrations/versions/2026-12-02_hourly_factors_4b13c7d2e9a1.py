"""hourly factors: versioned hourly emission factors, profiles, energy per hour

Revision ID: 4b13c7d2e9a1
Revises: 3f9c1d2e7a64
Create Date: 2026-12-02 01:00:00.000000

* ``hourly_emission_factors``: a factor valid for one UTC hour (``utc_hour``, hours since
  1970-01-01T00:00Z), basis, source, licence, Electricity Maps' estimated flag, versioned
  (``is_current`` marks the version in use). ``hourly_profiles``: each zone's profile ratios
  (weekend x month x hour of day, from the latest full year of hourly factors).
* ``activity_energy_hours``: the energy each run and serving window used in each UTC hour,
  written by the ETL once per load.
* ``activity_co2e`` matches each hour's energy to the finest factor: the hourly factor, else
  the profile estimate (ratio x the yearly factor of the record's year), else the yearly
  factor; it adds ``intensity_method``, ``location_factor_estimated``,
  ``location_yearly_intensity_g_per_kwh`` and ``co2e_location_yearly_kg`` (the yearly-only
  figure, for comparison with tools that use yearly averages), carried by ``run_co2e``,
  ``inference_co2e``, ``v_run_emissions``, ``v_team_monthly`` and ``rollup_team_month``.

Existing ledgers: the ETL cursors and content hashes of MLflow sources are cleared, so the
next ``carbonledger etl`` reloads every run once and writes its hours.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "4b13c7d2e9a1"
down_revision: str | None = "5c14e8f3a0b2"
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


# THE place where a factor is chosen and CO2e computed (docs/sql.md, docs/methodology.md).
# Yearly factor: the zone's current factor for the record's year, else the latest earlier
# year, else the earliest known. Per hour of the record (activity_energy_hours): the current
# hourly factor of that zone and hour (hourly), else the zone's profile ratio for that
# hour's cell x the yearly factor (hourly-profile-estimate), else the yearly factor. The
# record's location intensity is the energy-weighted mean over its hours; its
# intensity_method is the coarsest method among its hours. Market-based: the contractual
# factor for the zone and year, else location-based (market_is_location_fallback = 1).
ACTIVITY_CO2E = """
CREATE VIEW activity_co2e AS
WITH a AS ({run_arm} UNION ALL {window_arm}
), y AS (
    SELECT a.*,
           CASE WHEN a.energy_kwh > 0
                THEN a.facility_energy_kwh * COALESCE(a.estimated_energy_kwh, 0.0) / a.energy_kwh
                ELSE 0.0 END AS estimated_facility_energy_kwh,
           COALESCE(
               (SELECT MAX(f.year) FROM emission_factors f
                WHERE f.zone = a.zone AND f.basis = 'location' AND f.year <= a.activity_year),
               (SELECT MIN(f.year) FROM emission_factors f
                WHERE f.zone = a.zone AND f.basis = 'location')
           ) AS factor_year
    FROM a
), hh AS (
    SELECT eh.record_kind, eh.record_pk,
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
           MIN(hf.licence) AS hourly_licence
    FROM activity_energy_hours eh
    LEFT JOIN hourly_emission_factors hf
        ON hf.zone = eh.zone AND hf.basis = 'location' AND hf.utc_hour = eh.utc_hour
       AND hf.is_current
    LEFT JOIN hourly_profiles p
        ON p.zone = eh.zone AND p.basis = 'location' AND p.profile_cell = eh.profile_cell
    GROUP BY eh.record_kind, eh.record_pk
), m AS (
    SELECT y.*,
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
        ON loc.zone = y.zone AND loc.year = y.factor_year AND loc.basis = 'location'
    LEFT JOIN hh ON hh.record_kind = y.record_kind AND hh.record_pk = y.record_pk
)
SELECT m.*,
       m.facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
       m.facility_energy_kwh * m.location_yearly_intensity_g_per_kwh / 1000.0
           AS co2e_location_yearly_kg,
       m.estimated_facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0
           AS estimated_co2e_location_kg,
       m.inclusive_facility_energy_kwh * m.location_intensity_g_per_kwh / 1000.0
           AS inclusive_co2e_location_kg,
       COALESCE(mkt.intensity_g_per_kwh, m.location_intensity_g_per_kwh)
           AS market_intensity_g_per_kwh,
       mkt.version AS market_factor_version,
       mkt.source AS market_factor_source,
       mkt.instrument AS market_instrument,
       CASE WHEN mkt.id IS NULL THEN 1 ELSE 0 END AS market_is_location_fallback,
       m.facility_energy_kwh * COALESCE(mkt.intensity_g_per_kwh, m.location_intensity_g_per_kwh)
           / 1000.0 AS co2e_market_kg,
       m.estimated_facility_energy_kwh
           * COALESCE(mkt.intensity_g_per_kwh, m.location_intensity_g_per_kwh) / 1000.0
           AS estimated_co2e_market_kg,
       m.inclusive_facility_energy_kwh
           * COALESCE(mkt.intensity_g_per_kwh, m.location_intensity_g_per_kwh) / 1000.0
           AS inclusive_co2e_market_kg
FROM m
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = m.zone AND mkt.year = m.activity_year AND mkt.basis = 'market'
"""

_OLD_TAIL = "plugin_intensity_g_per_kwh, plugin_co2e_kg"
_NEW_TAIL = (
    "plugin_intensity_g_per_kwh, plugin_co2e_kg, intensity_method, location_factor_estimated,"
    "\n       location_yearly_intensity_g_per_kwh, co2e_location_yearly_kg"
)

_DAILY_OLD = "SUM(co2e_location_kg) AS co2e_location_kg,"
_DAILY_NEW = (
    "SUM(co2e_location_kg) AS co2e_location_kg,"
    " SUM(co2e_location_yearly_kg) AS co2e_location_yearly_kg,"
)


def _views(dialect: str, one_truth) -> None:  # type: ignore[no-untyped-def]
    year = (
        "EXTRACT(YEAR FROM w.window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', w.window_start)"
    )
    op.execute(
        ACTIVITY_CO2E.format(
            run_arm=one_truth._RUN_ARM, window_arm=one_truth._WINDOW_ARM.format(year=year)
        )
    )
    op.execute(one_truth.RUN_CO2E.replace(_OLD_TAIL, _NEW_TAIL))
    op.execute(one_truth.INFERENCE_CO2E.replace(_OLD_TAIL, _NEW_TAIL))
    op.execute(one_truth.V_LIFECYCLE_RUNS)
    op.execute(one_truth.V_RUN_EMISSIONS.format(month=one_truth._fmt(dialect, "c.start_time", "month")))
    daily = one_truth.V_INFERENCE_DAILY.replace(_DAILY_OLD, _DAILY_NEW)
    assert daily != one_truth.V_INFERENCE_DAILY
    op.execute(
        daily.format(
            day=one_truth._fmt(dialect, "window_start", "day"),
            month=one_truth._fmt(dialect, "window_start", "month"),
        )
    )
    op.execute(one_truth.V_SCOPE2)
    op.execute(V_TEAM_MONTHLY)
    op.execute(one_truth.V_MODEL_LIFECYCLE)
    reporting = _previous("reporting", "6c2e0f8b4d31")
    op.execute(reporting._budget_sql(dialect))


# Per team and month, with the yearly-only figure beside the finest one.
V_TEAM_MONTHLY = """
CREATE VIEW v_team_monthly AS
WITH a AS (
    SELECT month, team, 1 AS runs, facility_energy_kwh, co2e_location_kg,
           0.0 AS inference_co2e_location_kg, co2e_location_kg AS training_co2e_location_kg,
           co2e_market_kg, estimated_co2e_location_kg, 0 AS requests, co2e_location_yearly_kg
    FROM v_run_emissions WHERE kind <> 'inference'
    UNION ALL
    SELECT month, team, 0, facility_energy_kwh, co2e_location_kg, co2e_location_kg, 0.0,
           co2e_market_kg, estimated_co2e_location_kg, requests, co2e_location_yearly_kg
    FROM v_inference_daily
)
SELECT month, team, SUM(runs) AS training_runs,
       CAST(SUM(requests) AS BIGINT) AS inference_requests,
       SUM(facility_energy_kwh) AS facility_energy_kwh,
       SUM(training_co2e_location_kg) AS training_co2e_location_kg,
       SUM(inference_co2e_location_kg) AS inference_co2e_location_kg,
       SUM(co2e_location_kg) AS co2e_location_kg,
       SUM(co2e_market_kg) AS co2e_market_kg,
       SUM(COALESCE(estimated_co2e_location_kg, 0.0)) AS estimated_co2e_location_kg,
       SUM(co2e_location_kg) - SUM(COALESCE(estimated_co2e_location_kg, 0.0))
           AS measured_co2e_location_kg,
       SUM(co2e_location_yearly_kg) AS co2e_location_yearly_kg
FROM a
GROUP BY month, team
"""

_HOURS_POLICY = (
    "(record_kind = 'run' AND record_pk IN (SELECT r.id FROM runs r)) OR "
    "(record_kind = 'window' AND record_pk IN (SELECT w.id FROM inference_windows w))"
)

_RELOAD = (
    "UPDATE runs SET content_hash = '' WHERE source_id IN "
    "(SELECT id FROM tracking_sources WHERE kind = 'mlflow')",
    "DELETE FROM etl_state WHERE source_id IN "
    "(SELECT id FROM tracking_sources WHERE kind = 'mlflow')",
    "DELETE FROM rollup_team_month",
    "DELETE FROM rollup_model_month",
    "DELETE FROM rollup_inference_daily",
    "DELETE FROM rollup_scope2_month",
    "DELETE FROM rollup_state",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    for view in reversed(one_truth.NEW_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.create_table(
        "hourly_emission_factors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("utc_hour", sa.BigInteger(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("intensity_g_per_kwh", sa.Double(), nullable=False),
        sa.Column("direct_intensity_g_per_kwh", sa.Double(), nullable=True),
        sa.Column("is_estimated", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("licence", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "basis IN ('location', 'market')", name=op.f("ck_hourly_emission_factors_basis")
        ),
        sa.CheckConstraint(
            "intensity_g_per_kwh >= 0",
            name=op.f("ck_hourly_emission_factors_intensity_nonnegative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hourly_emission_factors")),
        sa.UniqueConstraint(
            "zone",
            "basis",
            "utc_hour",
            "version",
            name=op.f("uq_hourly_emission_factors_zone_basis_utc_hour_version"),
        ),
    )
    op.create_index(
        "ix_hourly_emission_factors_current",
        "hourly_emission_factors",
        ["zone", "basis", "utc_hour", "is_current"],
    )
    op.create_table(
        "hourly_profiles",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("profile_cell", sa.Integer(), nullable=False),
        sa.Column("ratio", sa.Double(), nullable=False),
        sa.Column("source_year", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "basis", "profile_cell", name=op.f("pk_hourly_profiles")),
    )
    op.create_table(
        "activity_energy_hours",
        sa.Column("record_kind", sa.String(length=8), nullable=False),
        sa.Column("record_pk", sa.BigInteger(), nullable=False),
        sa.Column("utc_hour", sa.BigInteger(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("profile_cell", sa.Integer(), nullable=False),
        sa.Column("energy_kwh", sa.Double(), nullable=False),
        sa.Column("facility_energy_kwh", sa.Double(), nullable=False),
        sa.CheckConstraint(
            "record_kind IN ('run', 'window')", name=op.f("ck_activity_energy_hours_record_kind")
        ),
        sa.PrimaryKeyConstraint(
            "record_kind", "record_pk", "utc_hour", name=op.f("pk_activity_energy_hours")
        ),
    )
    with op.batch_alter_table("rollup_team_month") as batch:
        batch.add_column(sa.Column("co2e_location_yearly_kg", sa.Double(), nullable=True))
    for statement in _RELOAD:
        op.execute(statement)
    _views(dialect, one_truth)
    if dialect == "postgresql":
        op.execute("ALTER TABLE activity_energy_hours ENABLE ROW LEVEL SECURITY")
        rls = _previous("rls", "7e4a1b9c2d53")
        op.execute(
            f"CREATE POLICY {rls.POLICY} ON activity_energy_hours "
            f"USING ({rls.UNRESTRICTED} OR ({_HOURS_POLICY})) "
            f"WITH CHECK ({rls.UNRESTRICTED} OR ({_HOURS_POLICY}))"
        )
    one_truth._security_invoker(one_truth.NEW_VIEWS)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    for view in reversed(one_truth.NEW_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    with op.batch_alter_table("rollup_team_month") as batch:
        batch.drop_column("co2e_location_yearly_kg")
    op.execute("DELETE FROM rollup_state")
    op.drop_table("activity_energy_hours")
    op.drop_table("hourly_profiles")
    op.drop_index("ix_hourly_emission_factors_current", table_name="hourly_emission_factors")
    op.drop_table("hourly_emission_factors")
    one_truth._create_views(dialect)
