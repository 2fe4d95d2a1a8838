"""activity_co2e is created from carbonledger.ledger.co2e_sql (its text unchanged)

The rollup refresh reads a day of serving windows with ``activity_co2e``'s rules but their
hours as one set (``carbonledger.ledger.co2e_sql.windows_sql``) instead of the view's probe
per window. So that the rules are written once, the view is now rendered by the same module
(``view_sql``): this migration replaces the view by that rendering, the same SQL as
``d4e5f6a7b8c9`` (columns, figures and plan unchanged). The downgrade restores
``d4e5f6a7b8c9``'s own text. A later change to the view's rules changes ``co2e_sql`` and adds a
migration whose downgrade restores a copy of the text before it.

Revision ID: a8b9c0d1e2f3
Revises: a7e3c9d1b5f2
Create Date: 2026-12-02 18:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from carbonledger.ledger.co2e_sql import COLUMNS, view_sql

revision: str = "a8b9c0d1e2f3"
down_revision: str | None = "a7e3c9d1b5f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _module(revision_id: str) -> Any:
    """The module of an earlier migration (its view SQL), from Alembic's script directory."""
    return context.script.get_revision(revision_id).module


def _columns() -> list[str]:
    return [c["name"] for c in sa.inspect(op.get_bind()).get_columns("activity_co2e")]


def upgrade() -> None:
    columns = _columns()
    assert columns[: len(COLUMNS)] == list(COLUMNS), columns  # CREATE OR REPLACE keeps them
    _module("c3d4e5f6a7b8")._replace(view_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    factor_years = _module("d4e5f6a7b8c9")._sql(op.get_bind().dialect.name, _columns())
    _module("c3d4e5f6a7b8")._replace(factor_years)
