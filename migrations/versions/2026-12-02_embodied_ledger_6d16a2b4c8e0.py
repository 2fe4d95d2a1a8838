"""embodied ledger: versioned embodied factors, per-run reservations, SCI, ranges

Revision ID: 6d16a2b4c8e0
Revises: 3f9c1d2e7a64
Create Date: 2026-12-02 09:00:00.000000

Additive: new tables (``embodied_factors``, ``run_embodied``, ``energy_method_uncertainty``,
``intensity_method_uncertainty``, seeded from ``carbonledger.uncertainty``) and new views on
top of ``activity_co2e`` (``current_embodied_factors``, ``v_run_embodied``,
``v_window_embodied``, ``v_run_uncertainty``, ``v_sci``). The last step recreates
``v_run_emissions`` with ``embodied_co2e_kg``, ``embodied_lifetime_years``,
``co2e_location_low_kg`` and ``co2e_location_high_kg`` appended (PostgreSQL: ``CREATE OR
REPLACE``, so the views reading it stay as they are). Existing ledgers: the ETL cursors of
MLflow sources are cleared, so the next ``carbonledger etl`` reads every run once and
records what it reserved.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from carbonledger import contract as c

revision: str = "6d16a2b4c8e0"
down_revision: str | None = "4b13c7d2e9a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_VIEWS = (
    "current_embodied_factors",
    "v_run_embodied",
    "v_window_embodied",
    "run_energy_uncertainty",
    "v_run_uncertainty",
    "v_sci",
)

CURRENT_EMBODIED_FACTORS = """
CREATE VIEW current_embodied_factors AS
SELECT f.* FROM embodied_factors f
WHERE f.version = (SELECT MAX(f2.version) FROM embodied_factors f2
                   WHERE f2.factor_key = f.factor_key)
"""

# M = TE x duration / (lifetime x seconds per year) x reserved / host, current factor version.
_M = "{te} * {duration} / ({lifetime} * {s_per_year}) * {reserved} / {host}"

V_RUN_EMBODIED = """
CREATE VIEW v_run_embodied AS
WITH x AS (
    SELECT r.id AS run_pk, r.source_id, r.run_id, r.kind, r.team, r.model_name, r.start_time,
           {month} AS month, e.factor_key, f.version AS factor_version,
           f.embodied_co2e_kg AS host_embodied_co2e_kg, e.resource, e.resources_reserved,
           e.resources_host, e.duration_s, e.lifetime_years,
           {m} AS embodied_co2e_kg,
           f.relative_uncertainty, f.uncertainty_key, f.method, f.source, f.licence,
           f.content_hash AS factor_content_hash, e.notes,
           CASE WHEN e.run_pk IS NULL THEN 'not-resolved'
                WHEN e.factor_key IS NULL THEN e.reason_code
                WHEN f.id IS NULL THEN 'no-factor'
                WHEN e.duration_s IS NULL THEN 'no-duration' END AS reason_code,
           CASE WHEN e.run_pk IS NULL
                THEN 'loaded before the embodied ledger: the next carbonledger etl records it'
                WHEN e.factor_key IS NULL THEN e.reason
                WHEN f.id IS NULL THEN 'the factor ' || e.factor_key || ' is missing: run '
                     || 'carbonledger etl to write it'
                WHEN e.duration_s IS NULL THEN 'the run has no duration (no start or end)'
           END AS reason
    FROM runs r
    LEFT JOIN run_embodied e ON e.run_pk = r.id
    LEFT JOIN current_embodied_factors f ON f.factor_key = e.factor_key
)
SELECT x.*, x.embodied_co2e_kg / (1.0 + x.relative_uncertainty) AS embodied_co2e_low_kg,
       x.embodied_co2e_kg * (1.0 + x.relative_uncertainty) AS embodied_co2e_high_kg
FROM x
"""

# A serving window is charged by its own length with the serving run's reservation.
V_WINDOW_EMBODIED = """
CREATE VIEW v_window_embodied AS
WITH x AS (
    SELECT w.id AS window_pk, w.source_id, w.run_id, w.model_name, w.model_version, w.team,
           w.window_start, w.window_end, {month} AS month, {window_s} AS duration_s,
           w.requests, r.id AS serving_run_pk, e.factor_key, e.factor_version,
           e.host_embodied_co2e_kg, e.resource, e.resources_reserved, e.resources_host,
           e.lifetime_years, e.relative_uncertainty, e.uncertainty_key, e.method, e.source,
           e.licence,
           CASE WHEN r.id IS NULL THEN 'serving-run-not-in-ledger'
                WHEN e.host_embodied_co2e_kg IS NULL THEN e.reason_code END AS reason_code,
           CASE WHEN r.id IS NULL THEN 'the serving run ' || w.run_id || ' is not in the '
                     || 'ledger (an imported window): no reservation to charge'
                WHEN e.host_embodied_co2e_kg IS NULL THEN e.reason END AS reason
    FROM inference_windows w
    LEFT JOIN runs r ON r.source_id = w.source_id AND r.run_id = w.run_id
    LEFT JOIN v_run_embodied e ON e.run_pk = r.id
)
SELECT x.*, {m} AS embodied_co2e_kg
FROM x
"""

# Per component of a run: its energy method's error source and relative uncertainty
# (docs/methodology.md "Uncertainty"): a listed method's own (by the table's key), else the
# least certain part of a method joined by +, a part the table lacks counting as
# "(unknown)". No aggregate, so a filter on run_pk reaches run_energy's index.
RUN_ENERGY_UNCERTAINTY = """
CREATE VIEW run_energy_uncertainty AS
SELECT re.run_pk, re.component,
       'energy:' || COALESCE(NULLIF(re.method, ''), 'unknown') AS uncertainty_key,
       re.energy_kwh,
       COALESCE(
           (SELECT t.relative_uncertainty FROM energy_method_uncertainty t
            WHERE t.method = re.method AND t.method <> '{unknown}'),
           (SELECT CASE WHEN COUNT(*) < {n_parts}
                         AND COALESCE(MAX(t.relative_uncertainty), 0.0) < {u_unknown}
                        THEN {u_unknown} ELSE MAX(t.relative_uncertainty) END
            FROM energy_method_uncertainty t
            WHERE '+' || COALESCE(re.method, '') || '+' LIKE '%+' || t.method || '+%')
       ) AS relative_uncertainty
FROM run_energy re
"""
_N_PARTS = (
    "(LENGTH(COALESCE(re.method, '')) - LENGTH(REPLACE(COALESCE(re.method, ''), '+', '')) + 1)"
)
_U_UNKNOWN = (
    "(SELECT u.relative_uncertainty FROM energy_method_uncertainty u WHERE u.method = '{unknown}')"
)

# The intensity method of a run's location-based factor is what activity_co2e recorded
# (hourly, hourly-profile-estimate, yearly or world-default; 4b13c7d2e9a1): one rule.

# One row per run and error source: each energy method (equal keys of a run add linearly)
# and the intensity method.
V_RUN_UNCERTAINTY = """
CREATE VIEW v_run_uncertainty AS
SELECT e.run_pk, e.uncertainty_key, MAX(e.relative_uncertainty) AS relative_uncertainty,
       SUM(e.relative_uncertainty * e.energy_kwh) * c.pue * c.location_intensity_g_per_kwh
           / 1000.0 AS sigma_kg
FROM run_energy_uncertainty e JOIN run_co2e c ON c.run_pk = e.run_pk
GROUP BY e.run_pk, e.uncertainty_key, c.pue, c.location_intensity_g_per_kwh
UNION ALL
SELECT c.run_pk, 'intensity:' || t.intensity_method, t.relative_uncertainty,
       t.relative_uncertainty * c.co2e_location_kg
FROM run_co2e c JOIN intensity_method_uncertainty t ON t.intensity_method = {method}
"""

# A run's combined standard uncertainty (kg), for v_run_emissions: a correlated scalar, so
# only the runs a query selects are computed. Sum over pairs of components with the same
# key of (u x kWh)(u x kWh) = sum over keys of (the key's u x kWh)^2 (linear within a key).
_RUN_SIGMA_KG = """SQRT(
    COALESCE((SELECT SUM(a.relative_uncertainty * a.energy_kwh
                         * b.relative_uncertainty * b.energy_kwh)
              FROM run_energy_uncertainty a JOIN run_energy_uncertainty b
                  ON b.run_pk = a.run_pk AND b.uncertainty_key = a.uncertainty_key
              WHERE a.run_pk = c.run_pk), 0.0)
        * (c.pue * c.location_intensity_g_per_kwh / 1000.0)
        * (c.pue * c.location_intensity_g_per_kwh / 1000.0)
    + ((SELECT t.relative_uncertainty FROM intensity_method_uncertainty t
        WHERE t.intensity_method = {method}) * c.co2e_location_kg)
      * ((SELECT t.relative_uncertainty FROM intensity_method_uncertainty t
          WHERE t.intensity_method = {method}) * c.co2e_location_kg))"""

# SCI = ((E x I) + M) / R (location-based, as the specification requires): per model version
# with R = requests, and per training run with R = 1 run.
V_SCI = """
CREATE VIEW v_sci AS
WITH w AS (
    SELECT COALESCE(i.model_name, '(unknown)') AS model_name,
           COALESCE(i.model_version, 0) AS model_version, i.requests, i.co2e_location_kg,
           we.embodied_co2e_kg
    FROM inference_co2e i JOIN v_window_embodied we ON we.window_pk = i.window_pk
), v AS (
    SELECT model_name, model_version, COUNT(*) AS records,
           SUM(CASE WHEN embodied_co2e_kg IS NULL THEN 1 ELSE 0 END) AS records_without_embodied,
           CAST(SUM(requests) AS BIGINT) AS functional_units,
           SUM(co2e_location_kg) AS operational_co2e_kg,
           SUM(COALESCE(embodied_co2e_kg, 0.0)) AS embodied_co2e_kg
    FROM w GROUP BY model_name, model_version
), s AS (
    SELECT 'request' AS functional_unit, model_name, model_version,
           CAST(NULL AS INTEGER) AS run_pk, CAST(NULL AS VARCHAR(64)) AS run_id,
           CAST(NULL AS VARCHAR(200)) AS team, records, records_without_embodied,
           functional_units, operational_co2e_kg, embodied_co2e_kg
    FROM v
    UNION ALL
    SELECT 'run', e.model_name, CAST(NULL AS INTEGER), e.run_pk, e.run_id, e.team, 1,
           CASE WHEN m.embodied_co2e_kg IS NULL THEN 1 ELSE 0 END, CAST(1 AS BIGINT),
           e.co2e_location_kg, COALESCE(m.embodied_co2e_kg, 0.0)
    FROM run_co2e e JOIN v_run_embodied m ON m.run_pk = e.run_pk
    WHERE e.kind <> 'inference'
)
SELECT s.*,
       CASE WHEN functional_units > 0
            THEN (operational_co2e_kg + embodied_co2e_kg) / functional_units END
           AS sci_co2e_kg_per_unit,
       CASE WHEN functional_units > 0
            THEN (operational_co2e_kg + embodied_co2e_kg) * {g_per_kg} / functional_units END
           AS sci_co2e_g_per_unit
FROM s
"""

# v_run_emissions of 3f9c1d2e7a64 with embodied and the operational range appended, as
# correlated scalars: only the runs a query selects are computed (a join would make
# PostgreSQL build v_run_embodied for every run).
V_RUN_EMISSIONS = """
{create} VIEW v_run_emissions AS
SELECT c.*, {month} AS month,
       (SELECT m.embodied_co2e_kg FROM v_run_embodied m WHERE m.run_pk = c.run_pk)
           AS embodied_co2e_kg,
       (SELECT m.lifetime_years FROM v_run_embodied m WHERE m.run_pk = c.run_pk)
           AS embodied_lifetime_years,
       CASE WHEN c.co2e_location_kg > 0
            THEN c.co2e_location_kg * c.co2e_location_kg / (c.co2e_location_kg + {sigma})
            ELSE c.co2e_location_kg END AS co2e_location_low_kg,
       c.co2e_location_kg + COALESCE({sigma}, 0.0) AS co2e_location_high_kg
FROM run_co2e c
"""


def _fmt_month(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"


def _seconds(dialect: str, start: str, end: str) -> str:
    """Seconds between two timestamps (SQLite: to the microsecond it stores)."""
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"

    def epoch(col: str) -> str:
        return f"(CAST(strftime('%s', {col}) AS REAL) + strftime('%f', {col}) - strftime('%S', {col}))"

    return f"({epoch(end)} - {epoch(start)})"


def _m(te: str, duration: str, lifetime: str, reserved: str, host: str) -> str:
    return _M.format(
        te=te,
        duration=duration,
        lifetime=lifetime,
        s_per_year=repr(float(c.S_PER_YEAR)),
        reserved=reserved,
        host=host,
    )


def _security_invoker(views: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for view in views:
            op.execute(f"ALTER VIEW {view} SET (security_invoker = true)")


def _create_tables() -> None:
    op.create_table(
        "embodied_factors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("factor_key", sa.String(300), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("embodied_co2e_kg", sa.Double(), nullable=False),
        sa.Column("host_gpu_count", sa.Integer(), nullable=True),
        sa.Column("host_vcpus", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("licence", sa.String(200), nullable=True),
        sa.Column("relative_uncertainty", sa.Double(), nullable=False),
        sa.Column("uncertainty_key", sa.String(300), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column(
            "valid_from", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "embodied_co2e_kg >= 0", name=op.f("ck_embodied_factors_embodied_nonnegative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embodied_factors")),
        sa.UniqueConstraint(
            "factor_key", "version", name=op.f("uq_embodied_factors_factor_key_version")
        ),
    )
    op.create_table(
        "run_embodied",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("reservation_hash", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(200), nullable=True),
        sa.Column("cloud_provider", sa.String(16), nullable=True),
        sa.Column("host_model", sa.String(200), nullable=True),
        sa.Column("gpu_model", sa.String(200), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=True),
        sa.Column("gpu_count_host", sa.Integer(), nullable=True),
        sa.Column("cpu_count", sa.Integer(), nullable=True),
        sa.Column("cpu_count_used", sa.Integer(), nullable=True),
        sa.Column("ram_gb", sa.Double(), nullable=True),
        sa.Column("factor_key", sa.String(300), nullable=True),
        sa.Column("resource", sa.String(8), nullable=True),
        sa.Column("resources_reserved", sa.Double(), nullable=True),
        sa.Column("resources_host", sa.Double(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("lifetime_years", sa.Double(), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("resolution_hash", sa.String(64), nullable=True),
        sa.CheckConstraint("resource IN ('gpu', 'vcpu')", name=op.f("ck_run_embodied_resource")),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.id"], name=op.f("fk_run_embodied_run_pk_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_pk", name=op.f("pk_run_embodied")),
    )
    op.create_index(
        op.f("ix_run_embodied_reservation_hash_resolution_hash"),
        "run_embodied",
        ["reservation_hash", "resolution_hash"],
    )
    op.create_index(op.f("ix_run_embodied_factor_key"), "run_embodied", ["factor_key"])
    op.create_table(
        "energy_method_uncertainty",
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("relative_uncertainty", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("method", name=op.f("pk_energy_method_uncertainty")),
    )
    op.create_table(
        "intensity_method_uncertainty",
        sa.Column("intensity_method", sa.String(64), nullable=False),
        sa.Column("relative_uncertainty", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("intensity_method", name=op.f("pk_intensity_method_uncertainty")),
    )


def upgrade() -> None:
    from carbonledger.ledger.embodied import UNKNOWN_METHOD, sync_uncertainty

    dialect = op.get_bind().dialect.name
    _create_tables()
    sync_uncertainty(op.get_bind())
    op.execute(
        "DELETE FROM etl_state WHERE source_id IN "
        "(SELECT id FROM tracking_sources WHERE kind = 'mlflow')"
    )
    op.execute(CURRENT_EMBODIED_FACTORS)
    run_m = _m(
        "f.embodied_co2e_kg", "e.duration_s", "e.lifetime_years", "e.resources_reserved",
        "e.resources_host",
    )
    op.execute(V_RUN_EMBODIED.format(month=_fmt_month(dialect, "r.start_time"), m=run_m))
    window_m = _m(
        "x.host_embodied_co2e_kg", "x.duration_s", "x.lifetime_years", "x.resources_reserved",
        "x.resources_host",
    )
    op.execute(
        V_WINDOW_EMBODIED.format(
            month=_fmt_month(dialect, "w.window_start"),
            window_s=_seconds(dialect, "w.window_start", "w.window_end"),
            m=window_m,
        )
    )
    method = "c.intensity_method"
    op.execute(
        RUN_ENERGY_UNCERTAINTY.format(
            unknown=UNKNOWN_METHOD,
            n_parts=_N_PARTS,
            u_unknown=_U_UNKNOWN.format(unknown=UNKNOWN_METHOD),
        )
    )
    op.execute(V_RUN_UNCERTAINTY.format(method=method))
    op.execute(V_SCI.format(g_per_kg=repr(float(c.G_PER_KG))))
    _security_invoker(NEW_VIEWS)
    # Last: v_run_emissions with the new columns appended.
    month = _fmt_month(dialect, "c.start_time")
    sigma = _RUN_SIGMA_KG.format(method=method)
    if dialect == "postgresql":
        op.execute(
            V_RUN_EMISSIONS.format(create="CREATE OR REPLACE", month=month, sigma=sigma)
        )
    else:
        op.execute("DROP VIEW v_run_emissions")
        op.execute(V_RUN_EMISSIONS.format(create="CREATE", month=month, sigma=sigma))
    _security_invoker(["v_run_emissions"])


def _previous(name: str, revision_id: str):  # type: ignore[no-untyped-def]
    """The module of an earlier migration of this folder (its view SQL)."""
    import importlib.util
    from pathlib import Path

    path = next(Path(__file__).parent.glob(f"*_{revision_id}.py"))
    spec = importlib.util.spec_from_file_location(f"_cl_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    one_truth = _previous("one_truth", "3f9c1d2e7a64")
    hourly = _previous("hourly", "4b13c7d2e9a1")
    # v_run_emissions loses columns: drop it and what reads it, these views, then rebuild
    # the views as 4b13c7d2e9a1 left them.
    # Readers first: v_run_emissions and what reads it, these views, then the rest.
    ordered = list(reversed(one_truth.NEW_VIEWS))
    cut = ordered.index("v_run_emissions") + 1
    for view in [*ordered[:cut], *reversed(NEW_VIEWS), *ordered[cut:]]:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    hourly._views(dialect, one_truth)
    one_truth._security_invoker(one_truth.NEW_VIEWS)
    op.drop_table("intensity_method_uncertainty")
    op.drop_table("energy_method_uncertainty")
    op.drop_index(op.f("ix_run_embodied_factor_key"), table_name="run_embodied")
    op.drop_index(
        op.f("ix_run_embodied_reservation_hash_resolution_hash"), table_name="run_embodied"
    )
    op.drop_table("run_embodied")
    op.drop_table("embodied_factors")
