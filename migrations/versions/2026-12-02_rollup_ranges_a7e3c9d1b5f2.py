"""rollup_ranges: the parts of a total with its ranges, by month, day, team and model

``embodied.total_with_range`` (the Overview, Teams and Models pages, the report's ranges) read
the per-record views for every record in scope (v_run_emissions, v_run_uncertainty,
v_run_embodied, v_window_embodied, inference_co2e): minutes at 200,000 runs. The new rollup
holds the same parts (``carbonledger.reporting.range_parts``) summed by month (serving
windows also by UTC day), team and model; the refresh keeps it with the other rollups. On
PostgreSQL it gets the team row-level security policy of the other rollups (7e4a1b9c2d53).
The rollup state is cleared, so the next refresh rebuilds every rollup (and fills this one).

Revision ID: a7e3c9d1b5f2
Revises: f6b7c8d9e0a1
Create Date: 2026-12-02 18:00:00.000000
"""

import runpy
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "a7e3c9d1b5f2"
down_revision: str | None = "f6b7c8d9e0a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "rollup_ranges"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity", sa.String(16), nullable=False),
        sa.Column("part", sa.String(16), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("day", sa.String(10), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("model_name", sa.String(500), nullable=True),
        sa.Column("uncertainty_key", sa.String(300), nullable=True),
        sa.Column("methods", sa.String(500), nullable=True),
        sa.Column("intensity_method", sa.String(64), nullable=True),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("records_without_embodied", sa.BigInteger(), nullable=False),
        sa.Column("co2e_kg", sa.Double(), nullable=True),
        sa.Column("sigma_kg", sa.Double(), nullable=True),
        sa.Column("gpu_co2e_kg", sa.Double(), nullable=True),
        sa.Column("cpu_co2e_kg", sa.Double(), nullable=True),
        sa.Column("ram_co2e_kg", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_activity_month"), TABLE, ["activity", "month"])
    op.create_index(op.f(f"ix_{TABLE}_model_name"), TABLE, ["model_name"])
    op.create_index(op.f(f"ix_{TABLE}_day"), TABLE, ["day"])
    op.execute("DELETE FROM rollup_state")
    if op.get_bind().dialect.name == "postgresql":
        # the team row-level security migration's policy name and conditions
        rls = runpy.run_path(str(next(Path(__file__).parent.glob("*_7e4a1b9c2d53.py"))))
        policy, unrestricted = rls["POLICY"], rls["UNRESTRICTED"]
        condition = f"{unrestricted} OR ({rls['SCOPED']['rollup_scope2_month']})"
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {policy} ON {TABLE} USING ({condition}) WITH CHECK ({condition})"
        )


def downgrade() -> None:
    op.drop_table(TABLE)  # its indexes and policy go with it
