"""inference and budgets

Revision ID: 5b1d9e7a3c20
Revises: efd0294cb09d
Create Date: 2026-11-23 11:00:00.000000

Inference windows get requests/rows/errors, latency percentiles, the active/idle split of their
energy, how it was obtained (metered or imported, estimate or not) and a load timestamp; the
``inference_co2e`` view recomputes their CO2e from the current emission factors exactly like
``run_co2e`` does for runs. Budgets get their origin (``cli`` or ``yaml``) and checks on period
and basis; budget alerts keep the usage at the crossing and how the webhook took it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1d9e7a3c20"
down_revision: str | None = "efd0294cb09d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)

# Versioned SQL: a later change to the view is a new migration that replaces it.
# Per window: CO2e from activity data x the current factor version, with the same factor-year
# rule as run_co2e (the window's year, else the latest earlier year, else the earliest known),
# and per-request figures. wh_per_request is fully loaded (idle share included, facility
# energy); active_wh_per_request counts only the energy above idle (x PUE).
INFERENCE_CO2E = """
CREATE VIEW inference_co2e AS
WITH w AS (
    SELECT iw.*,
           COALESCE(iw.grid_zone, 'WORLD') AS zone,
           COALESCE(
               (SELECT MAX(f.year) FROM emission_factors f
                WHERE f.zone = COALESCE(iw.grid_zone, 'WORLD') AND f.basis = 'location'
                  AND f.year <= iw.activity_year),
               (SELECT MIN(f.year) FROM emission_factors f
                WHERE f.zone = COALESCE(iw.grid_zone, 'WORLD') AND f.basis = 'location')
           ) AS factor_year
    FROM inference_windows iw
)
SELECT w.id AS window_pk, w.source_id, w.run_id, w.model_name, w.model_version, w.team,
       w.window_start, w.window_end, w.activity_year, w.metering, w.energy_is_estimate,
       w.methods, w.requests, w.rows, w.errors, w.busy_s, w.latency_p50_ms, w.latency_p95_ms,
       w.latency_p99_ms, w.energy_kwh, w.active_energy_kwh, w.idle_energy_kwh, w.pue,
       w.facility_energy_kwh, w.zone, w.factor_year,
       loc.intensity_g_per_kwh AS location_intensity_g_per_kwh,
       loc.version AS location_factor_version,
       loc.source AS location_factor_source,
       w.facility_energy_kwh * loc.intensity_g_per_kwh / 1000.0 AS co2e_location_kg,
       COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh) AS market_intensity_g_per_kwh,
       mkt.version AS market_factor_version,
       CASE WHEN mkt.id IS NULL THEN 1 ELSE 0 END AS market_is_location_fallback,
       w.facility_energy_kwh * COALESCE(mkt.intensity_g_per_kwh, loc.intensity_g_per_kwh)
           / 1000.0 AS co2e_market_kg,
       CASE WHEN w.requests > 0
            THEN w.facility_energy_kwh * 1000.0 / w.requests END AS wh_per_request,
       CASE WHEN w.requests > 0
            THEN w.active_energy_kwh * COALESCE(w.pue, 1.0) * 1000.0 / w.requests
       END AS active_wh_per_request,
       CASE WHEN w.requests > 0
            THEN w.facility_energy_kwh * loc.intensity_g_per_kwh / w.requests
       END AS co2e_location_g_per_request,
       w.plugin_intensity_g_per_kwh,
       w.plugin_co2e_kg
FROM w
LEFT JOIN current_emission_factors loc
    ON loc.zone = w.zone AND loc.year = w.factor_year AND loc.basis = 'location'
LEFT JOIN current_emission_factors mkt
    ON mkt.zone = w.zone AND mkt.year = w.activity_year AND mkt.basis = 'market'
"""


def _window_columns() -> list[sa.Column]:
    return [
        sa.Column("rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("errors", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("busy_s", sa.Double(), nullable=True),
        sa.Column("latency_p50_ms", sa.Double(), nullable=True),
        sa.Column("latency_p95_ms", sa.Double(), nullable=True),
        sa.Column("latency_p99_ms", sa.Double(), nullable=True),
        sa.Column("metering", sa.String(length=16), server_default="metered", nullable=False),
        sa.Column("energy_is_estimate", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("methods", sa.String(length=500), nullable=True),
        sa.Column("active_energy_kwh", sa.Double(), nullable=True),
        sa.Column("idle_energy_kwh", sa.Double(), nullable=True),
        sa.Column("loaded_at", Timestamp, server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("inference_windows", schema=None) as batch_op:
        for column in _window_columns():
            batch_op.add_column(column)
        batch_op.create_check_constraint(
            op.f("ck_inference_windows_metering"), "metering IN ('metered', 'imported')"
        )
        batch_op.create_check_constraint(
            op.f("ck_inference_windows_requests_nonnegative"), "requests >= 0"
        )
        batch_op.create_index(
            batch_op.f("ix_inference_windows_team_window_start"),
            ["team", "window_start"],
            unique=False,
        )

    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=16), server_default="cli", nullable=False)
        )
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("updated_at", Timestamp, server_default=sa.func.now(), nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_budgets_period"), "period IN ('lifecycle', 'month', 'quarter', 'year')"
        )
        batch_op.create_check_constraint(
            op.f("ck_budgets_basis"), "basis IN ('location', 'market')"
        )
        batch_op.create_check_constraint(op.f("ck_budgets_origin"), "origin IN ('cli', 'yaml')")

    with op.batch_alter_table("budget_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("used_pct", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("limit_co2e_kg", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column("delivery", sa.String(length=16), server_default="none", nullable=False)
        )
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_budget_alerts_delivery"), "delivery IN ('pending', 'sent', 'failed', 'none')"
        )

    op.execute(INFERENCE_CO2E)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS inference_co2e")
    with op.batch_alter_table("budget_alerts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_budget_alerts_delivery"), type_="check")
        for name in ("detail", "delivery", "limit_co2e_kg", "used_pct"):
            batch_op.drop_column(name)
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        for ck in ("origin", "basis", "period"):
            batch_op.drop_constraint(op.f(f"ck_budgets_{ck}"), type_="check")
        for name in ("updated_at", "note", "origin"):
            batch_op.drop_column(name)
    with op.batch_alter_table("inference_windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_windows_team_window_start"))
        for ck in ("requests_nonnegative", "metering"):
            batch_op.drop_constraint(op.f(f"ck_inference_windows_{ck}"), type_="check")
        for column in reversed(_window_columns()):
            batch_op.drop_column(column.name)
