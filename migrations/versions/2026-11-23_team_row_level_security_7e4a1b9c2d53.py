"""team row level security

Revision ID: 7e4a1b9c2d53
Revises: 6c2e0f8b4d31
Create Date: 2026-11-23 12:00:00.000000

Optional team scoping on PostgreSQL (docs/reliability.md, docs/deploy.md). ``team_roles`` maps
a database role to the team(s) it may see. Row-level security on every table that carries a
team (directly, or through its run or budget) lets a *listed* role see only its teams' rows;
roles not listed (the read-only app role) see every row, and the tables' owner (the ETL role,
which loads and refreshes rollups) is not subject to the policies at all. The views are
switched to ``security_invoker`` so they are read with the caller's rights and cannot bypass
the policies. On SQLite only the (unused) ``team_roles`` table is created.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e4a1b9c2d53"
down_revision: str | None = "6c2e0f8b4d31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "team_scope"
# true for a role not listed in team_roles (the app's read-only role, analysts)
UNRESTRICTED = (
    "NOT EXISTS (SELECT 1 FROM team_roles tr WHERE tr.role_name = CAST(current_user AS text))"
)
MY_TEAMS = "(SELECT tr.team FROM team_roles tr WHERE tr.role_name = CAST(current_user AS text))"

# table -> the condition a listed role's rows must meet
SCOPED: dict[str, str] = {
    "teams": f"name IN {MY_TEAMS}",
    "experiments": f"team IN {MY_TEAMS}",
    "runs": f"team IN {MY_TEAMS}",
    "run_energy": "run_pk IN (SELECT r.id FROM runs r)",
    "run_metrics": (
        "EXISTS (SELECT 1 FROM runs r WHERE r.source_id = run_metrics.source_id "
        "AND r.run_id = run_metrics.run_id)"
    ),
    "inference_windows": f"team IN {MY_TEAMS}",
    "rollup_team_month": f"team IN {MY_TEAMS}",
    "rollup_model_month": f"team IN {MY_TEAMS}",
    "rollup_inference_daily": f"team IN {MY_TEAMS}",
    "rollup_scope2_month": f"team IN {MY_TEAMS}",
    # model budgets span teams (their usage would be partial): team budgets of its teams only
    "budgets": f"scope = 'team' AND scope_name IN {MY_TEAMS}",
    "budget_alerts": "budget_id IN (SELECT b.id FROM budgets b)",
    # raw MLflow payloads of rejected runs of any team: not for team roles
    "quarantine": "false",
}

VIEWS = (
    "current_emission_factors",
    "run_co2e",
    "inference_co2e",
    "v_run_emissions",
    "v_inference_daily",
    "v_scope2",
    "v_team_monthly",
    "v_model_lifecycle",
    "v_budget_status",
)


def upgrade() -> None:
    op.create_table(
        "team_roles",
        sa.Column("role_name", sa.String(length=63), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("role_name", "team", name=op.f("pk_team_roles")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    # A role sees its own mapping rows only (what the policies below need to read).
    op.execute("ALTER TABLE team_roles ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {POLICY} ON team_roles USING (role_name = CAST(current_user AS text))"
    )
    for table, condition in SCOPED.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON {table} "
            f"USING ({UNRESTRICTED} OR ({condition})) "
            f"WITH CHECK ({UNRESTRICTED} OR ({condition}))"
        )
    for view in VIEWS:
        op.execute(f"ALTER VIEW {view} SET (security_invoker = true)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for view in VIEWS:
            op.execute(f"ALTER VIEW {view} RESET (security_invoker)")
        for table in SCOPED:
            op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.drop_table("team_roles")
