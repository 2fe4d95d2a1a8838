"""Rollups refresh serving windows by UTC day; the monthly inference rows follow from the days.

* ``rollup_inference_daily`` gains what the inference rows of ``rollup_team_month`` need, so
  those are its days summed by month: ``windows_with_estimates``,
  ``estimated_facility_energy_kwh``, ``estimated_co2e_market_kg`` and the windows'
  ``embodied_co2e_kg`` (Scope 3, apart).
* ``rollup_scope2_day``: the windows' Scope 2 per day, team, zone, factor and intensity method;
  the inference rows of ``rollup_scope2_month`` are its days summed by month. On PostgreSQL it
  gets the team row-level security policy of the other rollups (7e4a1b9c2d53).
* ``inference_windows.loaded_at`` is indexed and ``rollup_state.windows_loaded_at`` records
  its newest value: a window re-loaded with changed figures dirties its day.

The rollup state is cleared, so the next refresh rebuilds every rollup.

Revision ID: b2c3d4e5f6a7
Revises: 9c19d6e4f8a3
Create Date: 2026-12-02
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "b2c3d4e5f6a7"
down_revision: str | None = "9c19d6e4f8a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAILY_COLUMNS = (
    ("windows_with_estimates", sa.BigInteger()),
    ("estimated_facility_energy_kwh", sa.Double()),
    ("estimated_co2e_market_kg", sa.Double()),
    ("embodied_co2e_kg", sa.Double()),
)


def _rls():  # type: ignore[no-untyped-def]
    """The team row-level security migration (its policy name and conditions)."""
    path = next(Path(__file__).parent.glob("*_7e4a1b9c2d53.py"))
    spec = importlib.util.spec_from_file_location("_cl_migration_rls", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    with op.batch_alter_table("rollup_inference_daily") as batch:
        for name, type_ in _DAILY_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "rollup_scope2_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("factor_year", sa.Integer(), nullable=True),
        sa.Column("windows", sa.BigInteger(), nullable=False),
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
        sa.Column("intensity_method", sa.String(32), nullable=True),
        sa.Column("co2e_location_yearly_kg", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_scope2_day")),
    )
    op.create_index(op.f("ix_rollup_scope2_day_day"), "rollup_scope2_day", ["day"])
    op.create_index(op.f("ix_rollup_scope2_day_month"), "rollup_scope2_day", ["month"])
    op.create_index("ix_inference_windows_loaded_at", "inference_windows", ["loaded_at"])
    with op.batch_alter_table("rollup_state") as batch:
        batch.add_column(sa.Column("windows_loaded_at", sa.DateTime(timezone=True)))
    op.execute("DELETE FROM rollup_state")
    if op.get_bind().dialect.name == "postgresql":
        rls = _rls()
        condition = rls.SCOPED["rollup_scope2_month"]
        op.execute("ALTER TABLE rollup_scope2_day ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {rls.POLICY} ON rollup_scope2_day "
            f"USING ({rls.UNRESTRICTED} OR ({condition})) "
            f"WITH CHECK ({rls.UNRESTRICTED} OR ({condition}))"
        )


def downgrade() -> None:
    with op.batch_alter_table("rollup_state") as batch:
        batch.drop_column("windows_loaded_at")
    op.drop_index("ix_inference_windows_loaded_at", "inference_windows")
    op.drop_table("rollup_scope2_day")  # its policy goes with it
    with op.batch_alter_table("rollup_inference_daily") as batch:
        for name, _type in reversed(_DAILY_COLUMNS):
            batch.drop_column(name)
    op.execute("DELETE FROM rollup_state")
