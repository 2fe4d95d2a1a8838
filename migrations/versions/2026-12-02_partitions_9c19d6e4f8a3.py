"""Monthly partitions of inference_windows and activity_energy_hours (PostgreSQL only).

Both tables grow with time at the same rate (a one-minute serving window has one row in each)
and become ``PARTITION BY RANGE`` on their time column (``window_start``; ``utc_hour``, hours
since the epoch), one partition per UTC month (``carbonledger.ledger.partitions``) from the
oldest row's month to ``MONTHS_AHEAD`` months after the newest (or now), and a DEFAULT
partition. A partitioned table's keys must contain the partition column: the primary key of
``inference_windows`` becomes ``(id, window_start)`` (ids stay unique: one sequence); its
upsert key ``(source_id, run_id, window_start)`` already had it.

Each table is swapped for a copy: the views that depend on it (recursively), the policies of
other tables that read it, its own policies, grants, indexes and constraints are read from the
catalogue first and recreated from those definitions afterwards, so this migration is right
whatever the earlier ones defined. The downgrade swaps back to one table the same way. SQLite
keeps one table: nothing to do.

Revision ID: 9c19d6e4f8a3
Revises: 8a18b5c3d7e2
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alembic import op
from sqlalchemy import Connection, text

from carbonledger.errors import LedgerError
from carbonledger.ledger import partitions as pt

revision: str = "9c19d6e4f8a3"
down_revision: str | None = "8a18b5c3d7e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keys the partition column was added to, and their definition on one table (downgrade).
_NARROWED = {"pk_inference_windows": "PRIMARY KEY (id)"}

_VIEWS = """
WITH RECURSIVE dep(oid, depth) AS (
    SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = CAST(:t AS regclass)
      AND r.ev_class <> d.refobjid
    UNION
    SELECT r.ev_class, dep.depth + 1 FROM dep
    JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> dep.oid
)
SELECT c.oid, c.oid::regclass::text, c.relkind, pg_get_viewdef(c.oid), c.reloptions,
       pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class'), MAX(dep.depth)
FROM dep JOIN pg_class c ON c.oid = dep.oid
GROUP BY c.oid ORDER BY MAX(dep.depth), c.oid::regclass::text
"""

_POLICIES = """
SELECT p.polname, p.polrelid::regclass::text, p.polpermissive,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
             FROM unnest(p.polroles) r),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p WHERE p.polrelid = CAST(:t AS regclass) OR p.oid IN (
    SELECT d.objid FROM pg_depend d
    WHERE d.classid = 'pg_policy'::regclass AND d.refobjid = CAST(:t AS regclass))
ORDER BY 2, 1
"""

_GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
       a.privilege_type, a.is_grantable
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.oid = CAST(:t AS regclass) AND a.grantee <> c.relowner
"""


@dataclass(frozen=True)
class _Captured:
    """What depends on or belongs to a table, as SQL to recreate it."""

    views: list[tuple[Any, ...]]
    policies: list[tuple[Any, ...]]
    keys: list[tuple[str, str]]
    indexes: list[str]
    rls: tuple[bool, bool]


def _grants(conn: Connection, name: str) -> list[str]:
    rows = conn.execute(text(_GRANTS), {"t": name}).all()
    return [
        f"GRANT {priv} ON {name} TO {who}{' WITH GRANT OPTION' if grantable else ''}"
        for who, priv, grantable in rows
    ]


def _capture(conn: Connection, table: str) -> _Captured:
    views = []
    for oid, name, kind, body, options, owner, comment, _ in conn.execute(
        text(_VIEWS), {"t": table}
    ):
        if kind != "v":
            raise LedgerError(
                f"{name} (relkind {kind}) depends on {table}: drop it, upgrade, recreate it"
            )
        views.append((oid, name, body, options, owner, comment, _grants(conn, name)))
    policies = [tuple(r) for r in conn.execute(text(_POLICIES), {"t": table})]
    keys = [
        (str(n), str(d))
        for n, d in conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u', 'f', 'x') "
                "ORDER BY contype = 'f', conname"
            ),
            {"t": table},
        )
    ]
    indexes = [
        str(r[0])
        for r in conn.execute(
            text(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = CAST(:t AS regclass) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1"
            ),
            {"t": table},
        )
    ]
    rls = conn.execute(
        text(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE oid = CAST(:t AS regclass)"
        ),
        {"t": table},
    ).one()
    incoming = conn.execute(
        text(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = CAST(:t AS regclass)"
        ),
        {"t": table},
    ).all()
    if incoming:
        raise LedgerError(
            f"foreign keys {incoming} reference {table}: drop them, upgrade, recreate them"
        )
    return _Captured(views, policies, keys, indexes, (bool(rls[0]), bool(rls[1])))


def _create_policy(row: tuple[Any, ...]) -> str:
    name, table, permissive, cmd, roles, qual, check = row
    sql = (
        f'CREATE POLICY "{name}" ON {table} AS {"PERMISSIVE" if permissive else "RESTRICTIVE"} '
        f"FOR {cmd} TO {', '.join(roles) or 'PUBLIC'}"
    )
    sql += f" USING ({qual})" if qual else ""
    return sql + (f" WITH CHECK ({check})" if check else "")


def _key_sql(name: str, definition: str, column: str, partitioned: bool) -> str:
    if definition.startswith(("PRIMARY KEY", "UNIQUE")):
        cols = definition[definition.index("(") + 1 : definition.index(")")]
        if partitioned and column not in [c.strip() for c in cols.split(",")]:
            definition = definition.replace(f"({cols})", f"({cols}, {column})", 1)
        elif not partitioned and name in _NARROWED:
            definition = _NARROWED[name]
    return f'CONSTRAINT "{name}" {definition}'


def _swap(table: str, *, partitioned: bool) -> None:
    """Replace ``table`` by a partitioned (or plain) copy with the same rows and dependents."""
    conn = op.get_bind()
    key = pt.PARTITIONED[table]
    got = _capture(conn, table)
    grants, owner = (
        _grants(conn, table),
        conn.execute(
            text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": table},
        ).scalar(),
    )
    for view in reversed(got.views):
        op.execute(f"DROP VIEW {view[1]}")
    for policy in got.policies:
        op.execute(f'DROP POLICY "{policy[0]}" ON {policy[1]}')
    old = f"{table}__unswapped"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    spec = f" PARTITION BY RANGE ({key.column})" if partitioned else ""
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE INCLUDING COMMENTS){spec}"
    )
    if partitioned:
        low, high = conn.exec_driver_sql(
            f"SELECT MIN({key.column}), MAX({key.column}) FROM {old}"  # noqa: S608
        ).one()
        now = datetime.now(UTC)
        if key.kind == "epoch_hour" and low is not None:
            low, high = (datetime.fromtimestamp(h * pt.S_PER_HOUR, UTC) for h in (low, high))
        pt.create_default_partition(conn, table)
        pt.ensure_partitions(conn, low or now, max(high or now, now))
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")  # noqa: S608 (constant names)
    for seq, column in conn.execute(
        text(
            "SELECT d.objid::regclass::text, a.attname FROM pg_depend d JOIN pg_attribute a "
            "ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "WHERE d.refobjid = CAST(:t AS regclass) AND d.classid = 'pg_class'::regclass "
            "AND d.deptype = 'a'"
        ),
        {"t": old},
    ).all():
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.{column}")
    op.execute(f"DROP TABLE {old}")
    for name, definition in got.keys:
        op.execute(
            f"ALTER TABLE {table} ADD {_key_sql(name, definition, key.column, partitioned)}"
        )
    for index in got.indexes:
        op.execute(index)
    if got.rls[0]:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    if got.rls[1]:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    if owner and owner != conn.execute(text("SELECT current_user")).scalar():
        op.execute(f'ALTER TABLE {table} OWNER TO "{owner}"')
    for grant in grants:
        op.execute(grant)
    for policy in got.policies:
        op.execute(_create_policy(policy))
    for _, name, body, options, view_owner, comment, view_grants in got.views:
        with_options = f" WITH ({', '.join(options)})" if options else ""
        op.execute(f"CREATE VIEW {name}{with_options} AS {body}")
        if view_owner != owner:
            op.execute(f'ALTER VIEW {name} OWNER TO "{view_owner}"')
        if comment:
            conn.execute(text(f"COMMENT ON VIEW {name} IS :c"), {"c": comment})
        for grant in view_grants:
            op.execute(grant)
    op.execute(f"ANALYZE {table}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in pt.PARTITIONED:
        _swap(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in reversed(pt.PARTITIONED):
        _swap(table, partitioned=False)
