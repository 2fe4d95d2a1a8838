"""cut: metric histories of runs, for the recommendations

Revision ID: 5c14e8f3a0b2
Revises: 3f9c1d2e7a64
Create Date: 2026-12-02 01:00:00.000000

* ``run_metric_history``: the logged points (step, timestamp, value) of a run's objective
  metrics (``CARBONLEDGER_HISTORY_KEYS``) and of the plugin's cumulative energy metric, kept
  by the ETL and downsampled to ``CARBONLEDGER_HISTORY_MAX_POINTS`` per key. ``carbonledger
  advise`` reads it to find the energy spent after a run's best step; the app draws a run's
  energy over time from it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c14e8f3a0b2"
down_revision: str | None = "3f9c1d2e7a64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_metric_history",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["tracking_sources.id"],
            name=op.f("fk_run_metric_history_source_id_tracking_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "source_id", "run_id", "key", "step", name=op.f("pk_run_metric_history")
        ),
    )


def downgrade() -> None:
    op.drop_table("run_metric_history")
