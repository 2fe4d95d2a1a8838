"""Load validated rows into the ledger: staging tables, then one upsert.

Everything happens in the caller's transaction.

On PostgreSQL rows reach the staging tables through binary ``COPY`` (psycopg 3); on SQLite
through the DBAPI's ``executemany``. Runs the ledger already holds with the same content hash
are counted as unchanged and never staged (a no-change pass creates no staging table). The
merge is ``INSERT ... SELECT ... ON CONFLICT (source_id, run_id) DO UPDATE`` on both. On
PostgreSQL, runs the ledger does not hold yet skip staging: ``copy_new_runs`` copies them
straight into ``runs`` and ``run_energy`` (same rows, same counts). Every staged run's
reservation goes to ``run_embodied`` (``carbonledger.etl.embodied``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

from sqlalchemy import Column, Connection, CursorResult, MetaData, Table, bindparam, text, update
from sqlalchemy.dialects import postgresql, sqlite

from carbonledger.etl import embodied
from carbonledger.etl.attribution import AttributionCounts, attribute
from carbonledger.etl.transform import Rejected, RunRecord
from carbonledger.ledger.models import Quarantine, Run, RunEnergy

RUN_COLUMNS = [c.name for c in Run.__table__.columns if c.name not in ("id", "loaded_at")]
ENERGY_COLUMNS = [
    "run_id",
    "component",
    "energy_kwh",
    "inclusive_energy_kwh",
    "method",
    "is_estimate",
]
_STAGE_RUNS = "cl_stage_runs"
_STAGE_ENERGY = "cl_stage_energy"
_STAGE_NEW = "cl_stage_new"  # ids of runs written straight into runs (PostgreSQL)


@dataclass(slots=True)
class MergeCounts:
    """Rows new to the ledger, changed, identical to what it held; nested-run attribution."""

    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    attribution: AttributionCounts = AttributionCounts()
    embodied: embodied.RefreshCounts = field(default_factory=embodied.RefreshCounts)


class Loader:
    """Stages rows of one source and merges them, all inside ``conn``'s transaction."""

    def __init__(self, conn: Connection, source_id: int) -> None:
        self.conn = conn
        self.source_id = source_id
        self.postgres = conn.dialect.name == "postgresql"
        self.staged = 0
        self.direct = 0
        meta = MetaData()
        run_cols = {c.name: c for c in Run.__table__.columns}
        self.stage_runs = Table(
            _STAGE_RUNS,
            meta,
            *[Column(name, run_cols[name].type) for name in RUN_COLUMNS],
            prefixes=["TEMPORARY"],
        )
        energy_cols = {c.name: c for c in RunEnergy.__table__.columns}
        self.stage_energy = Table(
            _STAGE_ENERGY,
            meta,
            Column("run_id", run_cols["run_id"].type),
            *[Column(n, energy_cols[n].type) for n in ENERGY_COLUMNS[1:]],
            prefixes=["TEMPORARY"],
        )
        self.stage_new = Table(
            _STAGE_NEW, meta, Column("run_id", run_cols["run_id"].type), prefixes=["TEMPORARY"]
        )
        self.stage_embodied = embodied.stage_table(meta)
        self.lifetime_years = embodied.lifetime_years()
        self.embodied_staged = 0
        self.unchanged_ids: list[str] = []
        self._tables_created = False

    def _create_tables(self) -> None:
        """The staging tables, made when a first run needs them (a no-change pass makes none)."""
        if self._tables_created:
            return
        for table in (self.stage_runs, self.stage_energy, self.stage_new, self.stage_embodied):
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
            table.create(self.conn)
        self._tables_created = True

    # -- staging ---------------------------------------------------------------------------
    def stage(self, records: list[RunRecord]) -> None:
        """Put validated runs into the staging tables."""
        if not records:
            return
        reservations = [
            embodied.staged_row(r.row, r.hardware, lifetime_years=self.lifetime_years)
            for r in records
        ]
        held = held_versions(self.conn, self.source_id, [r.row["run_id"] for r in records])
        same = [_same(held, r.row, e) for r, e in zip(records, reservations, strict=True)]
        self.unchanged_ids += [r.row["run_id"] for r, s in zip(records, same, strict=True) if s]
        if all(same):
            return
        records = [r for r, s in zip(records, same, strict=True) if not s]
        reservations = [e for e, s in zip(reservations, same, strict=True) if not s]
        self._create_tables()
        runs = [{**r.row, "source_id": self.source_id, "is_stale": False} for r in records]
        self._write(self.stage_embodied, embodied.STAGE_COLUMNS, reservations)
        self.embodied_staged += len(reservations)
        energy = [{"run_id": r.row["run_id"], **e} for r in records for e in r.energy]
        if self.postgres:  # runs new to the ledger skip staging (see copy_new_runs)
            runs, energy, new_ids = copy_new_runs(
                self.conn, self.source_id, runs, energy, known=set(held)
            )
            if new_ids:
                copy_values(self.conn, _STAGE_NEW, ["run_id"], ([i] for i in new_ids))
                self.direct += len(new_ids)
        self._write(self.stage_runs, RUN_COLUMNS, runs)
        self._write(self.stage_energy, ENERGY_COLUMNS, energy)
        self.staged += len(runs)

    def _write(self, table: Table, columns: list[str], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.postgres:
            copy_rows(self.conn, table, columns, rows)
        else:
            insert_rows(self.conn, table, columns, rows)

    # -- merge -------------------------------------------------------------------------------
    def merge(self) -> MergeCounts:
        """Upsert the staged runs and their energy, then attribute nested runs.

        After the upsert, ``carbonledger.etl.attribution`` charges the trees of the runs this
        load inserted or changed (staged, or copied straight in) to their ancestors' team and
        model and makes their parents' energy exclusive.
        """
        counts = MergeCounts(loaded=self.direct, unchanged=len(self.unchanged_ids))
        if self.staged:
            self._upsert(counts)
        if self.staged or self.direct:
            counts.attribution = attribute(self.conn, self.source_id, self.touched())
        if self.embodied_staged:
            counts.embodied = embodied.merge(self.conn, self.source_id)
        return counts

    def touched(self) -> str:
        """The runs this load inserted or changed: ``(run_id, parent_run_id)`` as a subquery."""
        return (
            f"(SELECT run_id, parent_run_id FROM {_STAGE_RUNS} UNION ALL "
            f"SELECT r.run_id, r.parent_run_id FROM {_STAGE_NEW} n JOIN runs r "
            f"ON r.source_id = {int(self.source_id)} AND r.run_id = n.run_id)"
        )

    def _upsert(self, counts: MergeCounts) -> None:
        """Merge the staging tables into ``runs`` and ``run_energy`` (changed runs only)."""
        if self.postgres:
            self.conn.exec_driver_sql(f"ANALYZE {_STAGE_RUNS}")
        same = self.conn.exec_driver_sql(  # runs staged only for a changed reservation row
            f"DELETE FROM {_STAGE_RUNS} WHERE EXISTS (SELECT 1 FROM runs r "
            f"WHERE r.source_id = {_STAGE_RUNS}.source_id AND r.run_id = {_STAGE_RUNS}.run_id "
            f"AND r.content_hash = {_STAGE_RUNS}.content_hash)"
        ).rowcount
        counts.unchanged += same
        remaining = self.staged - same
        if remaining == 0:
            return
        counts.updated = int(
            self.conn.exec_driver_sql(
                f"SELECT count(*) FROM {_STAGE_RUNS} s JOIN runs r "
                "ON r.source_id = s.source_id AND r.run_id = s.run_id"
            ).scalar_one()
        )
        counts.loaded += remaining - counts.updated
        cols = ", ".join(RUN_COLUMNS)
        sets = ", ".join(
            f"{c} = excluded.{c}"
            for c in RUN_COLUMNS
            if c not in ("source_id", "run_id", "stale_at")
        )
        self.conn.exec_driver_sql(
            f"INSERT INTO runs ({cols}) SELECT {cols} FROM {_STAGE_RUNS} WHERE true "
            f"ON CONFLICT (source_id, run_id) DO UPDATE SET {sets}, stale_at = NULL, "
            "loaded_at = CURRENT_TIMESTAMP"
        )
        matched = (
            f"SELECT r.id FROM runs r JOIN {_STAGE_RUNS} s "
            "ON r.source_id = s.source_id AND r.run_id = s.run_id"
        )
        self.conn.exec_driver_sql(f"DELETE FROM run_energy WHERE run_pk IN ({matched})")
        energy = ", ".join(ENERGY_COLUMNS[1:])
        self.conn.exec_driver_sql(
            f"INSERT INTO run_energy (run_pk, {energy}) "
            f"SELECT r.id, {', '.join(f'e.{c}' for c in ENERGY_COLUMNS[1:])} "
            f"FROM {_STAGE_ENERGY} e JOIN {_STAGE_RUNS} s ON s.run_id = e.run_id "
            "JOIN runs r ON r.source_id = s.source_id AND r.run_id = s.run_id"
        )

    def close(self) -> None:
        """Drop the staging tables (still inside the transaction)."""
        if not self._tables_created:
            return
        for name in (_STAGE_RUNS, _STAGE_ENERGY, _STAGE_NEW, embodied.STAGE):
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")

    # -- quarantine and stale runs ---------------------------------------------------------
    def quarantine(self, rejected: Iterable[Rejected]) -> int:
        """Record refused runs (one row per run, updated when seen again)."""
        rows = [
            {
                "source_id": self.source_id,
                "record_id": r.record_id,
                "reason": r.reason,
                "detail": r.detail,
                "payload": r.payload,
            }
            for r in rejected
        ]
        if not rows:
            return 0
        dialect = postgresql if self.postgres else sqlite
        stmt = dialect.insert(Quarantine).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source_id", "record_id"],
            set_={
                "reason": stmt.excluded.reason,
                "detail": stmt.excluded.detail,
                "payload": stmt.excluded.payload,
                "last_seen_at": datetime.now(UTC),
            },
        )
        self.conn.execute(stmt)
        return len(rows)

    def resolve_quarantine(self) -> int:
        """Remove quarantine rows of runs that were loaded cleanly in this load.

        Runs read again unchanged count too: one the ledger holds, quarantined after a bad
        edit and mended back to what the ledger holds, is clean again.
        """
        removed = sum(
            result.rowcount
            for result in by_ids(
                self.conn,
                "DELETE FROM quarantine WHERE source_id = :s AND record_id {ids}",
                {"s": self.source_id},
                self.unchanged_ids,
            )
        )
        if not self._tables_created:
            return removed
        return (
            removed
            + self.conn.exec_driver_sql(
                f"DELETE FROM quarantine WHERE source_id = {int(self.source_id)} "
                f"AND (record_id IN (SELECT run_id FROM {_STAGE_RUNS}) "
                f"OR record_id IN (SELECT run_id FROM {_STAGE_NEW}))"
            ).rowcount
        )


# -- fast staging writes (the interface above calls them; nothing else changes) ----------------


def copy_rows(
    conn: Connection, table: Table, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` in binary (psycopg 3, PostgreSQL).

    The binary format with the columns' own types is 2-3x faster to produce than the text
    format (no float or timestamp formatting in Python).
    """
    copy_values(conn, table.name, columns, (list(map(row.get, columns)) for row in rows))


def copy_values(conn: Connection, table: str, columns: list[str], values: Iterable[Any]) -> None:
    """Binary ``COPY`` of rows given as sequences of ``columns``' values."""
    raw = conn.connection.driver_connection
    assert raw is not None
    types = _column_types(conn, table, columns)
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in values:
                copy.write_row(row)


def _column_types(conn: Connection, table: str, columns: list[str]) -> list[int]:
    """The type OIDs of ``table``'s ``columns`` (the table as the search path finds it)."""
    found: dict[str, int] = dict(
        conn.exec_driver_sql(
            "SELECT attname, atttypid FROM pg_attribute "
            "WHERE attrelid = %(t)s::regclass AND attnum > 0 AND NOT attisdropped",
            {"t": table},
        ).all()
    )
    return [int(found[c]) for c in columns]


_ID_CHUNK = 500  # run ids per IN list (SQLite's bound-parameter limit)


_HELD = ("content_hash", "reservation_hash", "duration_s", "lifetime_years")  # runs, run_embodied


def by_ids(
    conn: Connection, sql: str, params: dict[str, Any], ids: list[str]
) -> Iterator[CursorResult[Any]]:
    """Run ``sql`` over a list of ids, placed where it says ``{ids}`` (nothing for none).

    PostgreSQL takes the whole list as one array (``= ANY(:ids)``: a ``--full`` pass may
    re-read a million runs); SQLite ``_ID_CHUNK`` ids per ``IN`` list (its bound-parameter
    limit).
    """
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        yield conn.execute(text(sql.format(ids="= ANY(:ids)")), {**params, "ids": ids})
        return
    stmt = text(sql.format(ids="IN :ids")).bindparams(bindparam("ids", expanding=True))
    for i in range(0, len(ids), _ID_CHUNK):
        yield conn.execute(stmt, {**params, "ids": ids[i : i + _ID_CHUNK]})


def held_versions(
    conn: Connection, source_id: int, run_ids: list[str]
) -> dict[str, tuple[Any, ...]]:
    """What the ledger holds of each of ``run_ids`` it has (``_HELD``, one read per page).

    The run's content hash and its reservation row.
    """
    sql = (
        f"SELECT r.run_id, r.{_HELD[0]}, {', '.join(f'e.{c}' for c in _HELD[1:])} "
        "FROM runs r LEFT JOIN run_embodied e ON e.run_pk = r.id "
        "WHERE r.source_id = :s AND r.run_id {ids}"
    )
    return {
        r[0]: tuple(r[1:])
        for result in by_ids(conn, sql, {"s": source_id}, run_ids)
        for r in result
    }


def _same(
    held: dict[str, tuple[Any, ...]], row: dict[str, Any], reservation: dict[str, Any]
) -> bool:
    """Whether the merge would write nothing for this run.

    The ledger holds it with this content hash (the merge's own test) and its reservation row
    as staging would write it (the hardware as cleaned now, the lifetime setting of now:
    neither is in the hash).
    """
    theirs = held.get(row["run_id"])
    return (
        theirs is not None
        and theirs[0] is not None
        and theirs == (row["content_hash"], *(reservation[k] for k in _HELD[1:]))
    )


def copy_new_runs(
    conn: Connection,
    source_id: int,
    runs: list[dict[str, Any]],
    energy: list[dict[str, Any]],
    *,
    known: set[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """COPY the runs the ledger does not hold yet straight into ``runs`` and ``run_energy``.

    A first load (and every new run later) is thus two binary COPYs with ids drawn from
    ``runs``' own sequence, instead of staging, ``INSERT ... SELECT ... ON CONFLICT`` and a
    three-way join for the energy rows. The rows are exactly those the merge would insert
    (``loaded_at`` from its default, ``is_stale`` false). Runs already in the ledger are
    returned, with their energy rows, for the staging merge; so are the new runs' ids.
    """
    if known is None:
        known = set(held_versions(conn, source_id, [r["run_id"] for r in runs]))
    new = [r for r in runs if r["run_id"] not in known]
    if not new:
        return runs, energy, []
    pks = [
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('runs', 'id')) FROM generate_series(1, %(n)s)",
            {"n": len(new)},
        )
    ]
    pk_of = {r["run_id"]: pk for r, pk in zip(new, pks, strict=True)}
    copy_values(
        conn,
        "runs",
        ["id", *RUN_COLUMNS],
        ([pk, *map(r.get, RUN_COLUMNS)] for r, pk in zip(new, pks, strict=True)),
    )
    copy_values(
        conn,
        "run_energy",
        ["run_pk", *ENERGY_COLUMNS[1:]],
        (
            [pk_of[e["run_id"]], *map(e.get, ENERGY_COLUMNS[1:])]
            for e in energy
            if e["run_id"] in pk_of
        ),
    )
    kept = [r for r in runs if r["run_id"] in known]
    return kept, [e for e in energy if e["run_id"] not in pk_of], list(pk_of)


def insert_rows(
    conn: Connection, table: Table, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """``executemany`` of ``rows`` on the DBAPI cursor, in the connection's transaction.

    Values go through each column type's bind processor, exactly as ``conn.execute(insert,
    rows)`` would send them; skipping SQLAlchemy's per-row parameter handling makes SQLite
    staging 3-4x faster.
    """
    dialect = conn.dialect
    compiled = table.insert().compile(dialect=dialect, column_keys=columns)
    order = list(compiled.positiontup or columns)
    procs = [
        (i, proc)
        for i, name in enumerate(order)
        if (proc := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    columns_of = [list(map(dict.get, rows, repeat(name))) for name in order]  # by column
    for i, proc in procs:
        columns_of[i] = list(map(proc, columns_of[i]))
    params = list(zip(*columns_of, strict=True))
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.executemany(compiled.string, params)
    finally:
        cursor.close()


ANALYZE_AFTER_ROWS = 1000
"""Runs written by one load above which PostgreSQL re-reads the loaded tables' statistics."""
LOADED_TABLES = ("runs", "run_energy", "run_embodied", "activity_energy_hours")


def analyze_loaded(conn: Connection, written: int) -> None:
    """``ANALYZE`` the ledger tables a big load wrote (PostgreSQL), inside its transaction.

    A first load into an empty ledger leaves the planner with the empty tables' statistics
    until autovacuum comes, after the load's commit; the rollup refresh in the same
    transaction then joins hourly rows to factors by nested loops (seconds per 10,000 runs
    instead of tens of milliseconds). ANALYZE sees the transaction's own rows.
    """
    if conn.dialect.name == "postgresql" and written >= ANALYZE_AFTER_ROWS:
        conn.exec_driver_sql(f"ANALYZE {', '.join(LOADED_TABLES)}")


def mark_stale(conn: Connection, source_id: int, *, now: datetime, stale_after_s: float) -> int:
    """Flag RUNNING runs whose last heartbeat (or start) is older than the threshold.

    Their energy stays what the last flush reported; a later heartbeat or end clears the flag.
    """
    threshold = now - timedelta(seconds=stale_after_s)
    no_beat = Run.heartbeat_at.is_(None) & (Run.start_time < threshold)
    return conn.execute(
        update(Run)
        .where(
            Run.source_id == source_id,
            Run.status == "RUNNING",
            Run.is_stale.is_(False),
            (Run.heartbeat_at < threshold) | no_beat,
        )
        .values(is_stale=True, stale_at=now)
    ).rowcount


def dumps(value: Any) -> str:
    """JSON text for logs and summaries."""
    return json.dumps(value, sort_keys=True, default=str)
