"""Load validated rows into the ledger: staging tables, then one upsert.

Everything happens in the caller's transaction.

On PostgreSQL rows reach the staging tables through ``COPY`` (psycopg 3); on SQLite through
``executemany``. The merge is ``INSERT ... SELECT ... ON CONFLICT (source_id, run_id) DO
UPDATE`` on both, after unchanged rows (same content hash) were removed from staging.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, update
from sqlalchemy.dialects import postgresql, sqlite

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


@dataclass(slots=True)
class MergeCounts:
    """Rows new to the ledger, changed, identical to what it held; nested-run attribution."""

    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    attribution: AttributionCounts = AttributionCounts()


class Loader:
    """Stages rows of one source and merges them, all inside ``conn``'s transaction."""

    def __init__(self, conn: Connection, source_id: int) -> None:
        self.conn = conn
        self.source_id = source_id
        self.postgres = conn.dialect.name == "postgresql"
        self.staged = 0
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
        for table in (self.stage_runs, self.stage_energy):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
            table.create(conn)

    # -- staging ---------------------------------------------------------------------------
    def stage(self, records: list[RunRecord]) -> None:
        """Put validated runs into the staging tables."""
        if not records:
            return
        runs = [{**r.row, "source_id": self.source_id, "is_stale": False} for r in records]
        energy = [{"run_id": r.row["run_id"], **e} for r in records for e in r.energy]
        self._write(self.stage_runs, RUN_COLUMNS, runs)
        self._write(self.stage_energy, ENERGY_COLUMNS, energy)
        self.staged += len(records)

    def _write(self, table: Table, columns: list[str], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.postgres:
            raw = self.conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cur:
                with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row.get(c) for c in columns])
        else:
            self.conn.execute(table.insert(), rows)

    # -- merge -------------------------------------------------------------------------------
    def merge(self) -> MergeCounts:
        """Upsert the staged runs and their energy, then attribute nested runs.

        After the upsert, ``carbonledger.etl.attribution`` charges the staged runs' trees to
        their ancestors' team and model and makes their parents' energy exclusive.
        """
        counts = MergeCounts()
        if not self.staged:
            return counts
        if self.postgres:
            self.conn.exec_driver_sql(f"ANALYZE {_STAGE_RUNS}")
        counts.unchanged = self.conn.exec_driver_sql(
            f"DELETE FROM {_STAGE_RUNS} WHERE EXISTS (SELECT 1 FROM runs r "
            f"WHERE r.source_id = {_STAGE_RUNS}.source_id AND r.run_id = {_STAGE_RUNS}.run_id "
            f"AND r.content_hash = {_STAGE_RUNS}.content_hash)"
        ).rowcount
        remaining = self.staged - counts.unchanged
        if remaining == 0:
            return counts
        counts.updated = int(
            self.conn.exec_driver_sql(
                f"SELECT count(*) FROM {_STAGE_RUNS} s JOIN runs r "
                "ON r.source_id = s.source_id AND r.run_id = s.run_id"
            ).scalar_one()
        )
        counts.loaded = remaining - counts.updated
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
        counts.attribution = attribute(self.conn, self.source_id, _STAGE_RUNS)
        return counts

    def close(self) -> None:
        """Drop the staging tables (still inside the transaction)."""
        for name in (_STAGE_RUNS, _STAGE_ENERGY):
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
        """Remove quarantine rows of runs that were loaded cleanly in this load."""
        return self.conn.exec_driver_sql(
            f"DELETE FROM quarantine WHERE source_id = {int(self.source_id)} "
            f"AND record_id IN (SELECT run_id FROM {_STAGE_RUNS})"
        ).rowcount


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
