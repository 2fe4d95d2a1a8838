"""one truth: exclusive energy, nested-run attribution, one CO2e fragment, one lifecycle

Revision ID: 3f9c1d2e7a64
Revises: 7e4a1b9c2d53
Create Date: 2026-12-01 09:00:00.000000

* ``runs`` keeps each run's **exclusive** energy in ``energy_kwh``/``facility_energy_kwh``
  (MLflow's inclusive figure of a parent moves to ``inclusive_*``), the energy of its
  estimated components (``estimated_energy_kwh``), and what its team and model come from
  (``own_*`` tags, ``fallback_*`` experiment and rules, ``model_rule``), so the ETL can charge
  nested runs to their nearest tagged ancestor and re-attribute when a parent arrives later.
  ``energy_is_estimate`` becomes ``any_component_estimated`` (runs and windows).
* ``activity_co2e`` is the one SQL fragment that picks the factor year and computes CO2e, for
  runs and serving windows alike; ``run_co2e`` and ``inference_co2e`` select from it.
* ``v_lifecycle_runs`` is the one definition of a registered model's training runs.
* Measured and estimated shares are energy-weighted (rollups carry ``estimated_*`` columns).

Existing ledgers: the upgrade fills the new columns from what it holds, then clears the
content hashes and the ETL cursors of MLflow sources, so the next ``carbonledger etl`` reloads
every run once and attributes nested runs from their ancestors' tags.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "3f9c1d2e7a64"
down_revision: str | None = "7e4a1b9c2d53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_VIEWS = (
    "v_budget_status",
    "v_model_lifecycle",
    "v_team_monthly",
    "v_scope2",
    "v_inference_daily",
    "v_run_emissions",
    "inference_co2e",
    "run_co2e",
)
NEW_VIEWS = (
    "activity_co2e",
    "run_co2e",
    "inference_co2e",
    "v_lifecycle_runs",
    "v_run_emissions",
    "v_inference_daily",
    "v_scope2",
    "v_team_monthly",
    "v_model_lifecycle",
    "v_budget_status",
)

# Columns every activity record has; a run or a window fills what applies and NULL the rest.
_RUN_ARM = """
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
FROM runs r
"""

_WINDOW_ARM = """
SELECT 'window', w.id, w.source_id, w.run_id, CAST(NULL AS VARCHAR(500)),
       CAST(NULL AS VARCHAR(64)), CAST(NULL AS VARCHAR(64)), 'inference',
       CAST(NULL AS VARCHAR(16)), CAST(NULL AS BOOLEAN), w.team, CAST(NULL AS VARCHAR(64)),
       w.model_name, CAST(NULL AS VARCHAR(64)), w.model_version, CAST(NULL AS VARCHAR(200)),
       w.window_start, w.window_end, COALESCE(w.activity_year, CAST({year} AS INTEGER)),
       w.metering, w.any_component_estimated, w.methods, CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS VARCHAR(200)), CAST(NULL AS INTEGER), CAST(NULL AS VARCHAR(200)),
       CAST(NULL AS INTEGER), w.requests, w.rows, w.errors, w.busy_s, w.latency_p50_ms,
       w.latency_p95_ms, w.latency_p99_ms, w.energy_kwh, w.estimated_energy_kwh, w.energy_kwh,
       w.active_energy_kwh, w.idle_energy_kwh, w.pue, w.facility_energy_kwh,
       w.facility_energy_kwh, COALESCE(w.grid_zone, 'WORLD'), w.plugin_intensity_g_per_kwh,
       w.plugin_co2e_kg
FROM inference_windows w
"""

# THE place where a factor is chosen and CO2e computed (docs/sql.md, docs/methodology.md).
# Location-based: the zone's current factor for the record's year, else the latest earlier
# year, else the earliest year known. Market-based: the contractual factor for the zone and
# year, else location-based (market_is_location_fallback = 1). The estimated part is the
# share of the energy that estimated components produced (energy-weighted).
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
)
SELECT y.*,
       loc.intensity_g_per_kwh AS location_intensity_g_per_kwh,
       loc.version AS location_factor_version,
       loc.source AS location_factor_source,
       loc.licence AS location_factor_licence,
       y.facility_energy_kwh * loc.intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
       y.estimated_facility_energy_kwh * loc.intensity_g_per_kwh / 1000.0
           AS estimated_co2e_location_kg,
       y.inclusive_facility_energy_kwh * loc.intensity_g_per_kwh / 1000.0
           AS inclusive_co2e_location_kg,
       COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh) AS market_intensity_g_per_kwh,
       mkt.version AS market_factor_version,
       mkt.source AS market_factor_source,
       mkt.instrument AS market_instrument,
       CASE WHEN mkt.id IS NULL THEN 1 ELSE 0 END AS market_is_location_fallback,
       y.facility_energy_kwh * COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh)
           / 1000.0 AS co2e_market_kg,
       y.estimated_facility_energy_kwh
           * COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh) / 1000.0
           AS estimated_co2e_market_kg,
       y.inclusive_facility_energy_kwh
           * COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh) / 1000.0
           AS inclusive_co2e_market_kg
FROM y
LEFT JOIN current_emission_factors loc
    ON loc.zone = y.zone AND loc.year = y.factor_year AND loc.basis = 'location'
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = y.zone AND mkt.year = y.activity_year AND mkt.basis = 'market'
"""

_FACTOR_COLUMNS = """zone, factor_year, location_intensity_g_per_kwh, location_factor_version,
       location_factor_source, location_factor_licence, co2e_location_kg,
       estimated_co2e_location_kg, market_intensity_g_per_kwh, market_factor_version,
       market_factor_source, market_instrument, market_is_location_fallback, co2e_market_kg,
       estimated_co2e_market_kg, plugin_intensity_g_per_kwh, plugin_co2e_kg"""

RUN_CO2E = f"""
CREATE VIEW run_co2e AS
SELECT record_pk AS run_pk, source_id, run_id, run_name, parent_run_id, experiment_id, kind,
       status, is_stale, team, team_rule, model_name, model_rule, user_id, start_time,
       end_time, activity_year, metering, any_component_estimated, methods, duration_s,
       gpu_model, gpu_count, cpu_model, cpu_count, energy_kwh, estimated_energy_kwh,
       inclusive_energy_kwh, pue, facility_energy_kwh, estimated_facility_energy_kwh,
       inclusive_facility_energy_kwh, inclusive_co2e_location_kg, inclusive_co2e_market_kg,
       {_FACTOR_COLUMNS}
FROM activity_co2e WHERE record_kind = 'run'
"""

# Per window, with per-request figures: wh_per_request is fully loaded (idle share included,
# facility energy); active_wh_per_request counts only the energy above idle (x PUE).
INFERENCE_CO2E = f"""
CREATE VIEW inference_co2e AS
SELECT record_pk AS window_pk, source_id, run_id, model_name, model_version, team,
       start_time AS window_start, end_time AS window_end, activity_year, metering,
       any_component_estimated, methods, requests, rows, errors, busy_s, latency_p50_ms,
       latency_p95_ms, latency_p99_ms, energy_kwh, estimated_energy_kwh, active_energy_kwh,
       idle_energy_kwh, pue, facility_energy_kwh, estimated_facility_energy_kwh,
       {_FACTOR_COLUMNS},
       CASE WHEN requests > 0 THEN facility_energy_kwh * 1000.0 / requests END
           AS wh_per_request,
       CASE WHEN requests > 0 THEN active_energy_kwh * COALESCE(pue, 1.0) * 1000.0 / requests
           END AS active_wh_per_request,
       CASE WHEN requests > 0 THEN co2e_location_kg * 1000.0 / requests END
           AS co2e_location_g_per_request
FROM activity_co2e WHERE record_kind = 'window'
"""

# THE definition of a registered model's training runs (its lifecycle): runs charged to the
# model by their own carbon.model_name tag or their nearest tagged ancestor's (runs.model_name,
# set by the ETL), and the runs that produced one of its versions (lineage) with every run
# nested under them. Failed runs and sweeps included; each run once per model.
V_LIFECYCLE_RUNS = """
CREATE VIEW v_lifecycle_runs AS
WITH RECURSIVE lineage(model_name, run_pk, source_id, run_id) AS (
    SELECT rm.name, r.id, r.source_id, r.run_id
    FROM model_versions mv
    JOIN registered_models rm ON rm.id = mv.registered_model_id
    JOIN runs r ON r.run_id = mv.run_id AND r.source_id = rm.source_id
    WHERE r.kind <> 'inference'
    UNION
    SELECT l.model_name, c.id, c.source_id, c.run_id
    FROM lineage l JOIN runs c ON c.source_id = l.source_id AND c.parent_run_id = l.run_id
    WHERE c.kind <> 'inference'
)
SELECT r.model_name, r.id AS run_pk, 'tag' AS via
FROM runs r WHERE r.model_name IS NOT NULL AND r.kind <> 'inference'
UNION ALL
SELECT DISTINCT l.model_name, l.run_pk, 'lineage'
FROM lineage l JOIN runs r ON r.id = l.run_pk
WHERE r.model_name IS NULL OR r.model_name <> l.model_name
"""

V_RUN_EMISSIONS = """
CREATE VIEW v_run_emissions AS
SELECT c.*, {month} AS month FROM run_co2e c
"""

V_INFERENCE_DAILY = """
CREATE VIEW v_inference_daily AS
SELECT {day} AS day, {month} AS month,
       COALESCE(model_name, '(unknown)') AS model_name,
       COALESCE(model_version, 0) AS model_version,
       COALESCE(team, 'unassigned') AS team, zone, activity_year, factor_year,
       COUNT(*) AS windows, CAST(SUM(requests) AS BIGINT) AS requests,
       SUM(energy_kwh) AS energy_kwh, SUM(facility_energy_kwh) AS facility_energy_kwh,
       SUM(estimated_facility_energy_kwh) AS estimated_facility_energy_kwh,
       location_intensity_g_per_kwh, location_factor_source, location_factor_version,
       SUM(co2e_location_kg) AS co2e_location_kg,
       SUM(estimated_co2e_location_kg) AS estimated_co2e_location_kg,
       market_intensity_g_per_kwh, market_factor_source, market_instrument,
       market_is_location_fallback,
       SUM(co2e_market_kg) AS co2e_market_kg,
       SUM(estimated_co2e_market_kg) AS estimated_co2e_market_kg,
       CASE WHEN SUM(requests) > 0 THEN SUM(co2e_location_kg) * 1000.0 / SUM(requests) END
           AS co2e_location_kg_per_1000_requests
FROM inference_co2e
GROUP BY {day}, {month}, COALESCE(model_name, '(unknown)'), COALESCE(model_version, 0),
         COALESCE(team, 'unassigned'), zone, activity_year, factor_year,
         location_intensity_g_per_kwh, location_factor_source, location_factor_version,
         market_intensity_g_per_kwh, market_factor_source, market_instrument,
         market_is_location_fallback
"""

# GHG Protocol Scope 2, both bases side by side with the factor behind each figure.
V_SCOPE2 = """
CREATE VIEW v_scope2 AS
SELECT month, 'training' AS activity, team, zone, factor_year,
       SUM(facility_energy_kwh) AS facility_energy_kwh,
       location_intensity_g_per_kwh, location_factor_source, location_factor_version,
       SUM(co2e_location_kg) AS co2e_location_kg,
       market_intensity_g_per_kwh, market_factor_source, market_instrument,
       market_is_location_fallback, SUM(co2e_market_kg) AS co2e_market_kg
FROM v_run_emissions WHERE kind <> 'inference'
GROUP BY month, team, zone, factor_year, location_intensity_g_per_kwh,
         location_factor_source, location_factor_version, market_intensity_g_per_kwh,
         market_factor_source, market_instrument, market_is_location_fallback
UNION ALL
SELECT month, 'inference', team, zone, factor_year, SUM(facility_energy_kwh),
       location_intensity_g_per_kwh, location_factor_source, location_factor_version,
       SUM(co2e_location_kg), market_intensity_g_per_kwh, market_factor_source,
       market_instrument, market_is_location_fallback, SUM(co2e_market_kg)
FROM v_inference_daily
GROUP BY month, team, zone, factor_year, location_intensity_g_per_kwh,
         location_factor_source, location_factor_version, market_intensity_g_per_kwh,
         market_factor_source, market_instrument, market_is_location_fallback
"""

# Per team and month: training runs (inference-kind runs are counted through their windows).
# Estimated figures are energy-weighted: the part of the CO2e that estimated components made.
V_TEAM_MONTHLY = """
CREATE VIEW v_team_monthly AS
WITH a AS (
    SELECT month, team, 1 AS runs, facility_energy_kwh, co2e_location_kg,
           0.0 AS inference_co2e_location_kg, co2e_location_kg AS training_co2e_location_kg,
           co2e_market_kg, estimated_co2e_location_kg, 0 AS requests
    FROM v_run_emissions WHERE kind <> 'inference'
    UNION ALL
    SELECT month, team, 0, facility_energy_kwh, co2e_location_kg, co2e_location_kg, 0.0,
           co2e_market_kg, estimated_co2e_location_kg, requests
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
           AS measured_co2e_location_kg
FROM a
GROUP BY month, team
"""

# Lifecycle of a registered model: its training runs (v_lifecycle_runs) and the cumulative
# inference of all its versions.
V_MODEL_LIFECYCLE = """
CREATE VIEW v_model_lifecycle AS
WITH t AS (
    SELECT lr.model_name, COUNT(*) AS training_runs,
           SUM(e.facility_energy_kwh) AS training_facility_energy_kwh,
           SUM(e.co2e_location_kg) AS training_co2e_location_kg,
           SUM(e.co2e_market_kg) AS training_co2e_market_kg,
           MIN(e.start_time) AS first_run_at, MAX(e.start_time) AS last_run_at
    FROM v_lifecycle_runs lr JOIN run_co2e e ON e.run_pk = lr.run_pk
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


def _fmt(dialect: str, column: str, kind: str) -> str:
    if dialect == "postgresql":
        pattern = "YYYY-MM" if kind == "month" else "YYYY-MM-DD"
        return f"to_char({column} AT TIME ZONE 'UTC', '{pattern}')"
    pattern = "%Y-%m" if kind == "month" else "%Y-%m-%d"
    return f"strftime('{pattern}', {column})"


def _previous(name: str, revision_id: str):  # type: ignore[no-untyped-def]
    """The module of an earlier migration of this folder (its view SQL, for downgrade)."""
    path = next(Path(__file__).parent.glob(f"*_{revision_id}.py"))
    spec = importlib.util.spec_from_file_location(f"_cl_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _security_invoker(views: Sequence[str]) -> None:
    # Team row-level security (7e4a1b9c2d53): views are read with the caller's rights.
    if op.get_bind().dialect.name == "postgresql":
        for view in views:
            op.execute(f"ALTER VIEW {view} SET (security_invoker = true)")


def _create_views(dialect: str) -> None:
    year = (
        "EXTRACT(YEAR FROM w.window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', w.window_start)"
    )
    op.execute(
        ACTIVITY_CO2E.format(run_arm=_RUN_ARM, window_arm=_WINDOW_ARM.format(year=year))
    )
    op.execute(RUN_CO2E)
    op.execute(INFERENCE_CO2E)
    op.execute(V_LIFECYCLE_RUNS)
    op.execute(V_RUN_EMISSIONS.format(month=_fmt(dialect, "c.start_time", "month")))
    op.execute(
        V_INFERENCE_DAILY.format(
            day=_fmt(dialect, "window_start", "day"), month=_fmt(dialect, "window_start", "month")
        )
    )
    op.execute(V_SCOPE2)
    op.execute(V_TEAM_MONTHLY)
    op.execute(V_MODEL_LIFECYCLE)
    reporting = _previous("reporting", "6c2e0f8b4d31")
    op.execute(reporting._budget_sql(dialect))
    _security_invoker(NEW_VIEWS)


_RUN_COLUMNS = (
    ("model_rule", sa.String(64)),
    ("own_team", sa.String(200)),
    ("own_model_name", sa.String(500)),
    ("fallback_team", sa.String(200)),
    ("fallback_team_rule", sa.String(64)),
    ("fallback_model_name", sa.String(500)),
    ("estimated_energy_kwh", sa.Double()),
    ("inclusive_energy_kwh", sa.Double()),
    ("inclusive_facility_energy_kwh", sa.Double()),
)

# Fill what an existing ledger can tell: its figures are inclusive until the next ETL pass,
# which reloads every MLflow run (hashes and cursors cleared) and re-attributes nested runs.
_BACKFILL = (
    "UPDATE runs SET inclusive_energy_kwh = energy_kwh, "
    "inclusive_facility_energy_kwh = facility_energy_kwh",
    "UPDATE run_energy SET inclusive_energy_kwh = energy_kwh",
    "UPDATE runs SET estimated_energy_kwh = (SELECT COALESCE(SUM(e.energy_kwh), 0.0) "
    "FROM run_energy e WHERE e.run_pk = runs.id AND e.is_estimate = true) "
    "WHERE energy_kwh IS NOT NULL",
    "UPDATE runs SET own_team = CASE WHEN team_rule LIKE 'run:%' THEN team END, "
    "fallback_team = CASE WHEN team_rule LIKE 'run:%' THEN 'unassigned' ELSE team END, "
    "fallback_team_rule = CASE WHEN team_rule LIKE 'run:%' THEN 'default' ELSE team_rule END, "
    "own_model_name = model_name, "
    "model_rule = CASE WHEN model_name IS NOT NULL THEN 'run:carbon.model_name' END",
    "UPDATE inference_windows SET estimated_energy_kwh = "
    "CASE WHEN any_component_estimated THEN energy_kwh ELSE 0.0 END",
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
    for view in OLD_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    # Native ALTERs: a batch rebuild of `runs` would cascade-delete run_energy on SQLite.
    op.execute("ALTER TABLE runs RENAME COLUMN energy_is_estimate TO any_component_estimated")
    op.execute(
        "ALTER TABLE inference_windows RENAME COLUMN energy_is_estimate TO "
        "any_component_estimated"
    )
    for name, type_ in _RUN_COLUMNS:
        op.add_column("runs", sa.Column(name, type_, nullable=True))
    op.add_column("run_energy", sa.Column("inclusive_energy_kwh", sa.Double(), nullable=True))
    op.add_column(
        "inference_windows", sa.Column("estimated_energy_kwh", sa.Double(), nullable=True)
    )
    for statement in _BACKFILL:
        op.execute(statement)
    with op.batch_alter_table("rollup_team_month") as batch:
        batch.drop_constraint("pk_rollup_team_month", type_="primary")
        batch.drop_column("is_estimate")
        for name in ("records_with_estimates",):
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False))
        for name in (
            "estimated_facility_energy_kwh",
            "estimated_co2e_location_kg",
            "estimated_co2e_market_kg",
        ):
            batch.add_column(sa.Column(name, sa.Double(), nullable=False))
        batch.create_primary_key("pk_rollup_team_month", ["month", "team", "activity"])
    with op.batch_alter_table("rollup_model_month") as batch:
        batch.drop_column("estimated_runs")
        batch.add_column(sa.Column("estimated_co2e_location_kg", sa.Double(), nullable=False))
    with op.batch_alter_table("rollup_inference_daily") as batch:
        batch.add_column(sa.Column("estimated_co2e_location_kg", sa.Double(), nullable=False))
    _create_views(dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for view in reversed(NEW_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table in ("rollup_team_month", "rollup_model_month", "rollup_inference_daily"):
        op.execute(f"DELETE FROM {table}")
    op.execute("DELETE FROM rollup_state")
    with op.batch_alter_table("rollup_inference_daily") as batch:
        batch.drop_column("estimated_co2e_location_kg")
    with op.batch_alter_table("rollup_model_month") as batch:
        batch.drop_column("estimated_co2e_location_kg")
        batch.add_column(sa.Column("estimated_runs", sa.BigInteger(), nullable=False))
    with op.batch_alter_table("rollup_team_month") as batch:
        batch.drop_constraint("pk_rollup_team_month", type_="primary")
        for name in (
            "records_with_estimates",
            "estimated_facility_energy_kwh",
            "estimated_co2e_location_kg",
            "estimated_co2e_market_kg",
        ):
            batch.drop_column(name)
        batch.add_column(sa.Column("is_estimate", sa.Boolean(), nullable=False))
        batch.create_primary_key(
            "pk_rollup_team_month", ["month", "team", "activity", "is_estimate"]
        )
    # Back to inclusive figures, as the previous schema kept them.
    op.execute(
        "UPDATE runs SET energy_kwh = inclusive_energy_kwh, "
        "facility_energy_kwh = inclusive_facility_energy_kwh "
        "WHERE inclusive_energy_kwh IS NOT NULL"
    )
    op.execute(
        "UPDATE run_energy SET energy_kwh = inclusive_energy_kwh "
        "WHERE inclusive_energy_kwh IS NOT NULL"
    )
    op.execute("ALTER TABLE inference_windows DROP COLUMN estimated_energy_kwh")
    op.execute("ALTER TABLE run_energy DROP COLUMN inclusive_energy_kwh")
    for name, _ in reversed(_RUN_COLUMNS):
        op.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    op.execute(
        "ALTER TABLE inference_windows RENAME COLUMN any_component_estimated TO "
        "energy_is_estimate"
    )
    op.execute("ALTER TABLE runs RENAME COLUMN any_component_estimated TO energy_is_estimate")
    accounting = _previous("accounting", "efd0294cb09d")
    op.execute(accounting.RUN_CO2E)
    inference = _previous("inference", "5b1d9e7a3c20")
    op.execute(inference.INFERENCE_CO2E)
    reporting = _previous("reporting", "6c2e0f8b4d31")
    month = reporting._fmt(dialect, "c.start_time", "month")
    op.execute(reporting.V_RUN_EMISSIONS.format(month_start=month))
    year = (
        "EXTRACT(YEAR FROM window_start AT TIME ZONE 'UTC')"
        if dialect == "postgresql"
        else "strftime('%Y', window_start)"
    )
    op.execute(
        reporting.V_INFERENCE_DAILY.format(
            day=reporting._fmt(dialect, "window_start", "day"),
            month=reporting._fmt(dialect, "window_start", "month"),
            year=year,
        )
    )
    op.execute(reporting.V_SCOPE2)
    op.execute(reporting.V_TEAM_MONTHLY)
    op.execute(reporting.V_MODEL_LIFECYCLE)
    op.execute(reporting._budget_sql(dialect))
    _security_invoker(OLD_VIEWS)
