"""Rollups carry Scope 3 and the yearly-factor figure beside the operational ones.

``rollup_team_month`` and ``rollup_model_month`` get ``embodied_co2e_kg`` (the embodied
CO2e of the records counted: runs from ``v_run_emissions``, serving windows from
``v_window_embodied``; Scope 3, never summed into the Scope 2 columns);
``rollup_model_month`` and ``rollup_inference_daily`` get ``co2e_location_yearly_kg`` (what a
yearly-average tool would report, as ``rollup_team_month`` has since 4b13c7d2e9a1). The
rollup state is cleared, so the next refresh rebuilds every rollup.

Revision ID: 7e17c3d5f9a1
Revises: 6d16a2b4c8e0
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e17c3d5f9a1"
down_revision: str | None = "6d16a2b4c8e0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("rollup_team_month", "embodied_co2e_kg"),
    ("rollup_model_month", "co2e_location_yearly_kg"),
    ("rollup_model_month", "embodied_co2e_kg"),
    ("rollup_inference_daily", "co2e_location_yearly_kg"),
)


def upgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(column, sa.Double(), nullable=True))
    op.execute("DELETE FROM rollup_state")


def downgrade() -> None:
    for table, column in reversed(_COLUMNS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.execute("DELETE FROM rollup_state")
