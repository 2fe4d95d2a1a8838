"""Monthly partitions of the tables that grow with time (PostgreSQL; SQLite keeps one table).

``inference_windows`` (one row per serving window) and ``activity_energy_hours`` (one row per
record and UTC hour: a one-minute window has one, so it grows at the windows' rate) are
``PARTITION BY RANGE`` on their time column, one partition per UTC month named
``<table>_pYYYYMM``, plus ``<table>_default`` for rows of a month without a partition (so no
insert ever fails at a month boundary). :func:`ensure_partitions` creates the months a write
needs, :data:`MONTHS_AHEAD` months beyond them, and moves rows out of the default partition
into a month created later; the ETL calls it before it writes windows and hours. It costs one
catalogue query when every month exists. :func:`detach_partitions` detaches old months (they
stay as plain tables, to archive or drop).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from carbonledger.errors import LedgerError

log = logging.getLogger(__name__)

MONTHS_AHEAD = 3
MAX_MONTHS_PER_CALL = 120  # a batch spanning more (a bogus date) leaves the rest in _default
S_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class PartitionKey:
    """The time column a table is partitioned on and how its values encode time."""

    column: str
    kind: str  # "timestamp" (timestamptz) or "epoch_hour" (hours since 1970-01-01 UTC)


PARTITIONED: dict[str, PartitionKey] = {
    "inference_windows": PartitionKey("window_start", "timestamp"),
    "activity_energy_hours": PartitionKey("utc_hour", "epoch_hour"),
}


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition: its table, name, month (``None`` for the default one), size."""

    table: str
    name: str
    month: str | None
    rows_estimate: int
    total_bytes: int


def month_key(year: int, month: int) -> str:
    """``YYYY-MM`` of a year and month."""
    return f"{year:04d}-{month:02d}"


def partition_name(table: str, month: str) -> str:
    """Name of ``table``'s partition of ``month`` (``YYYY-MM``): ``<table>_pYYYYMM``."""
    return f"{table}_p{month[:4]}{month[5:7]}"


def default_partition(table: str) -> str:
    """Name of ``table``'s default partition."""
    return f"{table}_default"


def _add_months(month: str, n: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return month_key(index // 12, index % 12 + 1)


def _month_of(when: datetime) -> str:
    when = when.astimezone(UTC) if when.tzinfo else when
    return month_key(when.year, when.month)


def months_between(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive."""
    out, month = [], first
    while month <= last:
        out.append(month)
        month = _add_months(month, 1)
    return out


def bound(key: PartitionKey, month: str) -> str:
    """SQL literal of the first instant of ``month`` in ``key``'s encoding."""
    start = datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=UTC)
    if key.kind == "epoch_hour":
        return str(int(start.timestamp()) // S_PER_HOUR)
    return f"'{start:%Y-%m-%d %H:%M:%S}+00'"


def is_partitioned(conn: Connection, table: str) -> bool:
    """Whether ``table`` is a partitioned table (always false on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:t)"), {"t": table}
    ).scalar()
    return kind == "p"


def _children(conn: Connection, table: str) -> set[str]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    )
    return {r[0] for r in rows}


def create_default_partition(conn: Connection, table: str) -> None:
    """Create ``table``'s default partition if it has none."""
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {default_partition(table)} PARTITION OF {table} DEFAULT"
    )


def create_month(conn: Connection, table: str, month: str) -> None:
    """Create ``table``'s partition of ``month``, moving its rows out of the default one."""
    key = PARTITIONED[table]
    name, default = partition_name(table, month), default_partition(table)
    low, high = bound(key, month), bound(key, _add_months(month, 1))
    in_range = f"{key.column} >= {low} AND {key.column} < {high}"
    has_default = default in _children(conn, table)
    stranded = (
        has_default
        and conn.exec_driver_sql(
            f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {in_range})"  # noqa: S608 (constants)
        ).scalar()
    )
    if not stranded:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({low}) TO ({high})"
        )
        return
    # Rows that arrived before their month existed: move them, then attach the month.
    conn.exec_driver_sql(
        f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {default} WHERE {in_range} RETURNING *) "  # noqa: S608
        f"INSERT INTO {name} SELECT * FROM moved"
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
    )
    log.info("partitions: moved %s rows of %s out of %s", table, month, default)


def ensure_partitions(
    conn: Connection, start: datetime, end: datetime, *, ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create the monthly partitions covering ``start``..``end`` plus ``ahead`` months.

    Applies to every table of :data:`PARTITIONED` that is partitioned (a no-op on SQLite or
    before the partitioning migration). Runs in ``conn``'s transaction.

    Returns:
        The names of the partitions created (empty when every month existed).
    """
    if conn.dialect.name != "postgresql":
        return []
    first, last = _month_of(min(start, end)), _add_months(_month_of(max(start, end)), ahead)
    months = months_between(first, last)
    if len(months) > MAX_MONTHS_PER_CALL:
        log.warning(
            "partitions: %s..%s spans %d months; creating the last %d (older rows go to the "
            "default partition)",
            first,
            last,
            len(months),
            MAX_MONTHS_PER_CALL,
        )
        months = months[-MAX_MONTHS_PER_CALL:]
    created: list[str] = []
    for table in PARTITIONED:
        if not is_partitioned(conn, table):
            continue
        have = _children(conn, table)
        for month in months:
            name = partition_name(table, month)
            if name in have:
                continue
            if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
                log.warning("partitions: %s was detached; its rows go to the default one", name)
                continue
            create_month(conn, table, month)
            created.append(name)
    if created:
        log.info("partitions: created %s", ", ".join(created))
    return created


def list_partitions(conn: Connection) -> list[Partition]:
    """Every partition of the partitioned tables, oldest month first, default last."""
    out: list[Partition] = []
    for table in PARTITIONED:
        if not is_partitioned(conn, table):
            continue
        rows = conn.execute(
            text(
                "SELECT c.relname, GREATEST(c.reltuples, 0)::bigint, "
                "pg_total_relation_size(c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t) "
                "ORDER BY c.relname"
            ),
            {"t": table},
        )
        parts = [Partition(table, n, _name_month(table, n), int(r), int(b)) for n, r, b in rows]
        out.extend(sorted(parts, key=lambda p: (p.month is None, p.month or "")))
    return out


def _name_month(table: str, name: str) -> str | None:
    suffix = name[len(table) + 2 :]
    if name.startswith(f"{table}_p") and len(suffix) == 6 and suffix.isdigit():
        return f"{suffix[:4]}-{suffix[4:]}"
    return None


def detach_partitions(conn: Connection, *, before: str) -> list[str]:
    """Detach every monthly partition of a month before ``before`` (``YYYY-MM``).

    The detached tables keep their rows as plain tables (archive them with ``pg_dump -t`` and
    drop them, or move them to a cheaper tablespace); the ledger's views no longer see them.

    Raises:
        LedgerError: ``before`` is not ``YYYY-MM``, or the ledger is not partitioned.
    """
    if len(before) != 7 or before[4] != "-" or not (before[:4] + before[5:]).isdigit():
        raise LedgerError(f"--detach-before {before!r}: give a month as YYYY-MM, e.g. 2025-01")
    if not any(is_partitioned(conn, t) for t in PARTITIONED):
        raise LedgerError(
            "the ledger's tables are not partitioned (SQLite keeps one table; on PostgreSQL "
            "run `carbonledger db upgrade`): nothing to detach"
        )
    detached = []
    for part in list_partitions(conn):
        if part.month is not None and part.month < before:
            conn.exec_driver_sql(f"ALTER TABLE {part.table} DETACH PARTITION {part.name}")
            detached.append(part.name)
    return detached


def is_partition_table(name: str) -> bool:
    """Whether ``name`` is a partition of a partitioned ledger table (not in the models)."""
    return any(
        name == default_partition(t) or _name_month(t, name) is not None for t in PARTITIONED
    )


def include_object(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic ``include_object`` hook: partitions are not tables of the models."""
    return not (kind == "table" and reflected and name is not None and is_partition_table(name))
