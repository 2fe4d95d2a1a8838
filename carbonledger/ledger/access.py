"""Team scoping on PostgreSQL: which database roles see only their team's rows.

A role listed in ``team_roles`` is restricted by row-level security to the rows of its
team(s) in every table that carries a team (policies created by migration 7e4a1b9c2d53);
roles not listed (the read-only app role) and the owner (the ETL role) see every row.
:func:`grant_team` adds a mapping and the read grants, and is what
``carbonledger db grant-team`` runs.
"""

from __future__ import annotations

from sqlalchemy import Connection, String, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carbonledger.errors import LedgerError
from carbonledger.ledger.models import Base, Col, column


class TeamRole(Base):
    """A database role restricted to one team's rows (a role may have several teams)."""

    __tablename__ = "team_roles"

    role_name: Col[str] = column(String(63), primary_key=True)
    team: Col[str] = column(String(200), primary_key=True)


def grant_team(conn: Connection, *, role: str, team: str) -> bool:
    """Restrict ``role`` to ``team``'s rows and give it read access to the ledger.

    Grants CONNECT on the database, USAGE on the ledger's schema and SELECT on its tables and
    views (and on those later migrations create), never a write privilege.

    Args:
        conn: a connection as the ledger's owner (the ETL role), in a transaction.
        role: an existing PostgreSQL role (create it first: ``CREATE ROLE ... LOGIN``).
        team: the team it may see, as in the ledger's ``runs.team``.

    Returns:
        ``True`` when the mapping is new, ``False`` when it was already there.

    Raises:
        LedgerError: the ledger is not PostgreSQL, the role does not exist or the team is empty.
    """
    if conn.dialect.name != "postgresql":
        raise LedgerError(
            "team scoping uses PostgreSQL roles and row-level security; a SQLite ledger has "
            "no roles: give each team its own copy of the app, or move the ledger to PostgreSQL"
        )
    if not team.strip():
        raise LedgerError("--team is empty: give the team name as in the ledger (runs.team)")
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
        raise LedgerError(
            f"the PostgreSQL role {role!r} does not exist: create it first (as an administrator: "
            f"CREATE ROLE ... LOGIN PASSWORD ...), then run grant-team again"
        )
    quote = conn.dialect.identifier_preparer.quote
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    ident, schema_ident = quote(role), quote(schema)
    conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {quote(database)} TO {ident}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema_ident} TO {ident}")
    conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema_ident} TO {ident}")
    conn.exec_driver_sql(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_ident} GRANT SELECT ON TABLES TO {ident}"
    )
    added = conn.execute(
        pg_insert(TeamRole)
        .values(role_name=role, team=team)
        .on_conflict_do_nothing()
        .returning(TeamRole.role_name)
    )
    return added.first() is not None
