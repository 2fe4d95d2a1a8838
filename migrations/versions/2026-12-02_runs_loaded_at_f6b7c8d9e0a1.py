"""runs.loaded_at is indexed

Every ETL pass asks the rollups what changed since the last refresh: ``MAX(runs.loaded_at)``
and the months of runs with ``loaded_at`` past the mark. Without an index both were a
sequential scan of ``runs`` (15 ms at 20,000 runs, about half a second at 1,000,000, in every
no-change pass); with it they are an index probe and a range scan of the runs just loaded.

Revision ID: f6b7c8d9e0a1
Revises: c3d4e5f6a7b8
Create Date: 2026-12-02 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "f6b7c8d9e0a1"
down_revision: str | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_runs_loaded_at"), "runs", ["loaded_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_loaded_at"), "runs")
