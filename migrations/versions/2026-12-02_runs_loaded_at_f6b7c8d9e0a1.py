"""runs.loaded_at is indexed

Every ETL pass asks the rollups what changed since the last refresh: ``MAX(runs.loaded_at)``
and the months of runs with ``loaded_at`` past the mark. Without an index both were a
sequential scan of ``runs`` (15 ms at 20,000 runs, about half a second at 1,000,000, in every
no-change pass); with it they are an index probe and a range scan of the runs just loaded.
The index is built in the migration's transaction (writes to ``runs`` wait for it: seconds
per million runs; run `db upgrade` between ETL passes).

The same release stops counting current hourly factors in ``rollup_state.factors_count``
(``carbonledger.reporting.rollups._marks``): a state that was up to date is rewritten to the
new count here, so the first pass after the upgrade does not rebuild every rollup.

Revision ID: f6b7c8d9e0a1
Revises: d4e5f6a7b8c9
Create Date: 2026-12-02 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "f6b7c8d9e0a1"
down_revision: str | None = "d4e5f6a7b8c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_YEARLY = "(SELECT COUNT(*) FROM emission_factors) + (SELECT COUNT(*) FROM embodied_factors)"
_HOURLY = "(SELECT COUNT(*) FROM hourly_emission_factors WHERE is_current)"


def upgrade() -> None:
    op.create_index(op.f("ix_runs_loaded_at"), "runs", ["loaded_at"])
    op.execute(
        f"UPDATE rollup_state SET factors_count = {_YEARLY} "
        f"WHERE factors_count = {_YEARLY} + {_HOURLY}"
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE rollup_state SET factors_count = {_YEARLY} + {_HOURLY} "
        f"WHERE factors_count = {_YEARLY}"
    )
    op.drop_index(op.f("ix_runs_loaded_at"), "runs")
