"""reporting views

Revision ID: 6c2e0f8b4d31
Revises: 5b1d9e7a3c20
Create Date: 2026-11-23 11:00:00.000000

SQL views for sustainability analysts (documented column by column in docs/sql.md), and the
rollup tables the app and ``carbonledger report`` read (refreshed by the ETL,
carbonledger/reporting/rollups.py). Months are 'YYYY-MM' and days 'YYYY-MM-DD' in UTC.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c2e0f8b4d31"
down_revision: str | None = "5b1d9e7a3c20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = (
    "v_budget_status",
    "v_model_lifecycle",
    "v_team_monthly",
    "v_scope2",
    "v_inference_daily",
    "v_run_emissions",
)


def _fmt(dialect: str, column: str, kind: str) -> str:
    if dialect == "postgresql":
        pattern = "YYYY-MM" if kind == "month" else "YYYY-MM-DD"
        return f"to_char({column} AT TIME ZONE 'UTC', '{pattern}')"
    pattern = "%Y-%m" if kind == "month" else "%Y-%m-%d"
    return f"strftime('{pattern}', {column})"


# Every run with its recomputed CO2e (run_co2e) and the context an analyst filters on.
V_RUN_EMISSIONS = """
CREATE VIEW v_run_emissions AS
SELECT c.run_pk, c.source_id, c.run_id, c.experiment_id, r.run_name, c.kind, c.status,
       c.is_stale, c.team, c.model_name, c.user_id, c.start_time, c.end_time,
       {month_start} AS month, c.activity_year, c.metering, c.energy_is_estimate,
       r.duration_s, c.energy_kwh, c.pue, c.facility_energy_kwh, c.zone, c.factor_year,
       c.location_intensity_g_per_kwh, c.location_factor_source, c.location_factor_version,
       c.co2e_location_kg, c.market_intensity_g_per_kwh, c.market_factor_version,
       c.market_is_location_fallback, c.co2e_market_kg, c.plugin_co2e_kg,
       r.gpu_model, r.gpu_count, r.cpu_model, r.cpu_count, r.methods
FROM run_co2e c JOIN runs r ON r.id = c.run_pk
"""

# Inference windows summed per UTC day, model version, team and zone, times the current
# factors (same factor rules as run_co2e: the zone's year, else the latest earlier, else the
# earliest; market-based falls back to location-based, flagged).
V_INFERENCE_DAILY = """
CREATE VIEW v_inference_daily AS
WITH w AS (
    SELECT {day} AS day, {month} AS month,
           COALESCE(model_name, '(unknown)') AS model_name,
           COALESCE(model_version, 0) AS model_version,
           COALESCE(team, 'unassigned') AS team,
           COALESCE(grid_zone, 'WORLD') AS zone,
           COALESCE(activity_year, CAST({year} AS INTEGER)) AS activity_year,
           energy_is_estimate,
           COUNT(*) AS windows, CAST(SUM(requests) AS BIGINT) AS requests, SUM(energy_kwh) AS energy_kwh,
           SUM(facility_energy_kwh) AS facility_energy_kwh
    FROM inference_windows
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), y AS (
    SELECT w.*, COALESCE(
        (SELECT MAX(f.year) FROM emission_factors f WHERE f.zone = w.zone
            AND f.basis = 'location' AND f.year <= w.activity_year),
        (SELECT MIN(f.year) FROM emission_factors f WHERE f.zone = w.zone
            AND f.basis = 'location')) AS factor_year
    FROM w
)
SELECT y.day, y.month, y.model_name, y.model_version, y.team, y.zone, y.activity_year,
       y.factor_year, y.energy_is_estimate, y.windows, y.requests, y.energy_kwh, y.facility_energy_kwh,
       loc.intensity_g_per_kwh AS location_intensity_g_per_kwh,
       loc.source AS location_factor_source,
       y.facility_energy_kwh * loc.intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
       COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh) AS market_intensity_g_per_kwh,
       CASE WHEN mkt.id IS NULL THEN 1 ELSE 0 END AS market_is_location_fallback,
       y.facility_energy_kwh * COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh)
           / 1000.0 AS co2e_market_kg,
       CASE WHEN y.requests > 0 THEN y.facility_energy_kwh * loc.intensity_g_per_kwh
           / y.requests END AS co2e_location_kg_per_1000_requests
FROM y
LEFT JOIN current_emission_factors loc
    ON loc.zone = y.zone AND loc.year = y.factor_year AND loc.basis = 'location'
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = y.zone AND mkt.year = y.activity_year AND mkt.basis = 'market'
"""

# GHG Protocol Scope 2, both bases side by side with the factor behind each figure.
V_SCOPE2 = """
CREATE VIEW v_scope2 AS
SELECT e.month, 'training' AS activity, e.team, e.zone, e.factor_year,
       SUM(e.facility_energy_kwh) AS facility_energy_kwh,
       e.location_intensity_g_per_kwh, e.location_factor_source, e.location_factor_version,
       SUM(e.co2e_location_kg) AS co2e_location_kg,
       e.market_intensity_g_per_kwh, mkt.source AS market_factor_source,
       mkt.instrument AS market_instrument, e.market_is_location_fallback,
       SUM(e.co2e_market_kg) AS co2e_market_kg
FROM v_run_emissions e
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = e.zone AND mkt.year = e.activity_year AND mkt.basis = 'market'
WHERE e.kind <> 'inference'
GROUP BY e.month, e.team, e.zone, e.factor_year, e.location_intensity_g_per_kwh,
         e.location_factor_source, e.location_factor_version, e.market_intensity_g_per_kwh,
         mkt.source, mkt.instrument, e.market_is_location_fallback
UNION ALL
SELECT d.month, 'inference' AS activity, d.team, d.zone, d.factor_year,
       SUM(d.facility_energy_kwh), d.location_intensity_g_per_kwh, d.location_factor_source,
       loc.version, SUM(d.co2e_location_kg), d.market_intensity_g_per_kwh,
       mkt.source, mkt.instrument, d.market_is_location_fallback, SUM(d.co2e_market_kg)
FROM v_inference_daily d
LEFT JOIN current_emission_factors loc
    ON loc.zone = d.zone AND loc.year = d.factor_year AND loc.basis = 'location'
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = d.zone AND mkt.year = d.activity_year AND mkt.basis = 'market'
GROUP BY d.month, d.team, d.zone, d.factor_year, d.location_intensity_g_per_kwh,
         d.location_factor_source, loc.version, d.market_intensity_g_per_kwh, mkt.source,
         mkt.instrument, d.market_is_location_fallback
"""

# Per team and month: training runs (inference-kind runs are counted through their windows).
V_TEAM_MONTHLY = """
CREATE VIEW v_team_monthly AS
WITH a AS (
    SELECT month, team, 1 AS runs, facility_energy_kwh, co2e_location_kg,
           0.0 AS inference_co2e_location_kg, co2e_location_kg AS training_co2e_location_kg,
           co2e_market_kg,
           CASE WHEN energy_is_estimate THEN co2e_location_kg ELSE 0.0 END AS est_kg,
           0 AS requests
    FROM v_run_emissions WHERE kind <> 'inference'
    UNION ALL
    SELECT month, team, 0, facility_energy_kwh, co2e_location_kg, co2e_location_kg, 0.0,
           co2e_market_kg,
           CASE WHEN energy_is_estimate THEN co2e_location_kg ELSE 0.0 END, requests
    FROM v_inference_daily
)
SELECT month, team, SUM(runs) AS training_runs,
       CAST(SUM(requests) AS BIGINT) AS inference_requests,
       SUM(facility_energy_kwh) AS facility_energy_kwh,
       SUM(training_co2e_location_kg) AS training_co2e_location_kg,
       SUM(inference_co2e_location_kg) AS inference_co2e_location_kg,
       SUM(co2e_location_kg) AS co2e_location_kg,
       SUM(co2e_market_kg) AS co2e_market_kg,
       SUM(est_kg) AS estimated_co2e_location_kg,
       SUM(co2e_location_kg) - SUM(est_kg) AS measured_co2e_location_kg
FROM a
GROUP BY month, team
"""

# Lifecycle of a registered model: the runs that worked toward it (tagged carbon.model_name
# or producing one of its versions, failed runs and sweeps included, each counted once) and
# the cumulative inference of all its versions.
V_MODEL_LIFECYCLE = """
CREATE VIEW v_model_lifecycle AS
WITH lr AS (
    SELECT model_name, run_pk FROM v_run_emissions
    WHERE model_name IS NOT NULL AND kind <> 'inference'
    UNION
    SELECT rm.name, e.run_pk
    FROM model_versions mv
    JOIN registered_models rm ON rm.id = mv.registered_model_id
    JOIN v_run_emissions e ON e.run_id = mv.run_id AND e.source_id = rm.source_id
    WHERE e.kind <> 'inference'
), t AS (
    SELECT lr.model_name, COUNT(*) AS training_runs,
           SUM(e.facility_energy_kwh) AS training_facility_energy_kwh,
           SUM(e.co2e_location_kg) AS training_co2e_location_kg,
           SUM(e.co2e_market_kg) AS training_co2e_market_kg,
           MIN(e.start_time) AS first_run_at, MAX(e.start_time) AS last_run_at
    FROM lr JOIN v_run_emissions e ON e.run_pk = lr.run_pk
    GROUP BY lr.model_name
), i AS (
    SELECT model_name, COUNT(DISTINCT model_version) AS served_versions,
           CAST(SUM(requests) AS BIGINT) AS inference_requests,
           SUM(facility_energy_kwh) AS inference_facility_energy_kwh,
           SUM(co2e_location_kg) AS inference_co2e_location_kg,
           SUM(co2e_market_kg) AS inference_co2e_market_kg,
           MIN(day) AS first_served_day, MAX(day) AS last_served_day
    FROM v_inference_daily GROUP BY model_name
), m AS (
    SELECT model_name FROM t UNION SELECT model_name FROM i
)
SELECT m.model_name,
       COALESCE(t.training_runs, 0) AS training_runs,
       COALESCE(t.training_facility_energy_kwh, 0.0) AS training_facility_energy_kwh,
       COALESCE(t.training_co2e_location_kg, 0.0) AS training_co2e_location_kg,
       COALESCE(t.training_co2e_market_kg, 0.0) AS training_co2e_market_kg,
       COALESCE(i.served_versions, 0) AS served_versions,
       COALESCE(i.inference_requests, 0) AS inference_requests,
       COALESCE(i.inference_facility_energy_kwh, 0.0) AS inference_facility_energy_kwh,
       COALESCE(i.inference_co2e_location_kg, 0.0) AS inference_co2e_location_kg,
       COALESCE(i.inference_co2e_market_kg, 0.0) AS inference_co2e_market_kg,
       COALESCE(t.training_co2e_location_kg, 0.0)
           + COALESCE(i.inference_co2e_location_kg, 0.0) AS lifecycle_co2e_location_kg,
       COALESCE(t.training_co2e_market_kg, 0.0)
           + COALESCE(i.inference_co2e_market_kg, 0.0) AS lifecycle_co2e_market_kg,
       t.first_run_at, t.last_run_at, i.first_served_day, i.last_served_day
FROM m LEFT JOIN t ON t.model_name = m.model_name LEFT JOIN i ON i.model_name = m.model_name
"""

# Each budget against what its scope used: a model's lifecycle, or a team's current
# month/quarter/year (UTC), on the budget's basis.
V_BUDGET_STATUS = """
CREATE VIEW v_budget_status AS
WITH p AS (
    SELECT b.*, {cur_month} AS cur_month,
           CASE b.period
               WHEN 'month' THEN {cur_month}
               WHEN 'quarter' THEN {quarter_start}
               WHEN 'year' THEN {year_start}
           END AS period_start_month
    FROM budgets b
), u AS (
    SELECT p.id,
           CASE WHEN p.scope = 'model' THEN
               (SELECT CASE WHEN p.basis = 'market' THEN l.lifecycle_co2e_market_kg
                            ELSE l.lifecycle_co2e_location_kg END
                FROM v_model_lifecycle l WHERE l.model_name = p.scope_name)
           ELSE
               (SELECT SUM(CASE WHEN p.basis = 'market' THEN t.co2e_market_kg
                                ELSE t.co2e_location_kg END)
                FROM v_team_monthly t WHERE t.team = p.scope_name
                  AND t.month >= p.period_start_month AND t.month <= p.cur_month)
           END AS used_co2e_kg
    FROM p
)
SELECT p.id AS budget_id, p.scope, p.scope_name, p.period, p.basis, p.limit_co2e_kg,
       p.period_start_month, COALESCE(u.used_co2e_kg, 0.0) AS used_co2e_kg,
       100.0 * COALESCE(u.used_co2e_kg, 0.0) / p.limit_co2e_kg AS used_pct,
       p.limit_co2e_kg - COALESCE(u.used_co2e_kg, 0.0) AS remaining_co2e_kg,
       CASE WHEN COALESCE(u.used_co2e_kg, 0.0) >= p.limit_co2e_kg THEN 1 ELSE 0 END
           AS is_exhausted
FROM p JOIN u ON u.id = p.id
"""


def _budget_sql(dialect: str) -> str:
    if dialect == "postgresql":
        now = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
        return V_BUDGET_STATUS.format(
            cur_month=f"to_char({now}, 'YYYY-MM')",
            quarter_start=f"to_char(date_trunc('quarter', {now}), 'YYYY-MM')",
            year_start=f"to_char({now}, 'YYYY') || '-01'",
        )
    q = (
        "strftime('%Y', 'now') || '-' || printf('%02d', "
        "((CAST(strftime('%m', 'now') AS INTEGER) - 1) / 3) * 3 + 1)"
    )
    return V_BUDGET_STATUS.format(
        cur_month="strftime('%Y-%m', 'now')",
        quarter_start=q,
        year_start="strftime('%Y', 'now') || '-01'",
    )


def _create_tables() -> None:
    op.create_table(
        "rollup_team_month",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("activity", sa.String(16), nullable=False),
        sa.Column("is_estimate", sa.Boolean(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("energy_kwh", sa.Double(), nullable=False),
        sa.Column("facility_energy_kwh", sa.Double(), nullable=False),
        sa.Column("co2e_location_kg", sa.Double(), nullable=False),
        sa.Column("co2e_market_kg", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "team", "activity", "is_estimate", name=op.f("pk_rollup_team_month")
        ),
    )
    op.create_table(
        "rollup_model_month",
        sa.Column("model_name", sa.String(500), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("estimated_runs", sa.BigInteger(), nullable=False),
        sa.Column("facility_energy_kwh", sa.Double(), nullable=False),
        sa.Column("co2e_location_kg", sa.Double(), nullable=False),
        sa.Column("co2e_market_kg", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "team", "month", name=op.f("pk_rollup_model_month")),
    )
    op.create_table(
        "rollup_inference_daily",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("model_name", sa.String(500), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("windows", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("energy_kwh", sa.Double(), nullable=False),
        sa.Column("facility_energy_kwh", sa.Double(), nullable=False),
        sa.Column("co2e_location_kg", sa.Double(), nullable=False),
        sa.Column("co2e_market_kg", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "model_name", "model_version", "team", name=op.f("pk_rollup_inference_daily")
        ),
    )
    op.create_index(
        op.f("ix_rollup_inference_daily_month"), "rollup_inference_daily", ["month"]
    )
    op.create_table(
        "rollup_scope2_month",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("activity", sa.String(16), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("factor_year", sa.Integer(), nullable=True),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("unmetered_records", sa.BigInteger(), nullable=False),
        sa.Column("facility_energy_kwh", sa.Double(), nullable=False),
        sa.Column("location_intensity_g_per_kwh", sa.Double(), nullable=True),
        sa.Column("location_factor_source", sa.String(200), nullable=True),
        sa.Column("location_factor_version", sa.Integer(), nullable=True),
        sa.Column("co2e_location_kg", sa.Double(), nullable=False),
        sa.Column("market_intensity_g_per_kwh", sa.Double(), nullable=True),
        sa.Column("market_factor_source", sa.String(200), nullable=True),
        sa.Column("market_instrument", sa.String(200), nullable=True),
        sa.Column("market_is_location_fallback", sa.Integer(), nullable=False),
        sa.Column("co2e_market_kg", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_scope2_month")),
    )
    op.create_index(op.f("ix_rollup_scope2_month_month"), "rollup_scope2_month", ["month"])
    op.create_table(
        "run_metrics",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["tracking_sources.id"],
            name=op.f("fk_run_metrics_source_id_tracking_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "run_id", "key", name=op.f("pk_run_metrics")),
    )
    op.create_table(
        "rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runs_loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("factors_max_id", sa.Integer(), nullable=True),
        sa.Column("factors_count", sa.Integer(), nullable=True),
        sa.Column("versions_max_id", sa.Integer(), nullable=True),
        sa.Column("windows_max_id", sa.BigInteger(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_state")),
    )
    op.create_index(op.f("ix_runs_start_time"), "runs", ["start_time"])
    op.create_index(
        op.f("ix_inference_windows_window_start"), "inference_windows", ["window_start"]
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _create_tables()
    month = _fmt(dialect, "c.start_time", "month")
    op.execute(V_RUN_EMISSIONS.format(month_start=month))
    year = (
        "EXTRACT(YEAR FROM window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', window_start)"
    )
    op.execute(
        V_INFERENCE_DAILY.format(
            day=_fmt(dialect, "window_start", "day"),
            month=_fmt(dialect, "window_start", "month"),
            year=year,
        )
    )
    op.execute(V_SCOPE2)
    op.execute(V_TEAM_MONTHLY)
    op.execute(V_MODEL_LIFECYCLE)
    op.execute(_budget_sql(dialect))


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_index(op.f("ix_inference_windows_window_start"), table_name="inference_windows")
    op.drop_index(op.f("ix_runs_start_time"), table_name="runs")
    for table in (
        "rollup_state",
        "run_metrics",
        "rollup_inference_daily",
        "rollup_scope2_month",
        "rollup_model_month",
        "rollup_team_month",
    ):
        op.drop_table(table)
