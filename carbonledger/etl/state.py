"""The ETL's cursor per source and the load lock.

The cursor is read after the lock is taken and written in the same transaction as the data,
so a load that does not commit never advances it (dlt's rule: only trust finished loads).
Lock: ``pg_try_advisory_xact_lock`` on PostgreSQL (polled up to ``lock_timeout_s``); on
SQLite, ``BEGIN IMMEDIATE`` (SQLite's single writer lock, waited on by its busy timeout).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from carbonledger.contract import M_HEARTBEAT_MS
from carbonledger.errors import EtlLockedError
from carbonledger.ledger.models import EtlState

LOCK_KEY = zlib.crc32(b"carbonledger-etl")
LOCK_KEY_INT4 = LOCK_KEY - 2**32 if LOCK_KEY >= 2**31 else LOCK_KEY  # two-key form: int4
FUTURE_SLACK_MS = 86_400_000  # clock skew a mark may have


@dataclass(slots=True)
class Cursor:
    """High-water marks (epoch ms) and the ids sitting exactly on them."""

    end_time_ms: int | None = None
    end_time_ids: set[str] = field(default_factory=set)
    heartbeat_ms: int | None = None
    heartbeat_ids: set[str] = field(default_factory=set)
    models_updated_ms: int | None = None

    def seen(self, run: Any) -> bool:
        """Whether ``run`` sits on a boundary and was loaded with it already."""
        run_id = run.info.run_id
        if run_id in self.end_time_ids and run.info.end_time == self.end_time_ms:
            return True
        heartbeat = mark_ms(run.data.metrics.get(M_HEARTBEAT_MS))
        return (
            run_id in self.heartbeat_ids
            and heartbeat is not None
            and heartbeat == self.heartbeat_ms
            and (run.info.end_time is None or run.info.end_time < (self.end_time_ms or 0))
        )

    def advance(self, runs: Iterable[Any]) -> None:
        """Move the marks forward over ``runs`` (keeping boundary ids)."""
        for run in runs:
            run_id, end = run.info.run_id, mark_ms(run.info.end_time)
            if end is not None:
                if self.end_time_ms is None or end > self.end_time_ms:
                    self.end_time_ms, self.end_time_ids = end, {run_id}
                elif end == self.end_time_ms:
                    self.end_time_ids.add(run_id)
            beat = mark_ms(run.data.metrics.get(M_HEARTBEAT_MS))
            if beat is not None:
                if self.heartbeat_ms is None or beat > self.heartbeat_ms:
                    self.heartbeat_ms, self.heartbeat_ids = beat, {run_id}
                elif beat == self.heartbeat_ms:
                    self.heartbeat_ids.add(run_id)


def mark_ms(value: float | None) -> int | None:
    """A run's end time or heartbeat as a cursor mark, or ``None`` when it is impossible.

    NaN, a time before 1970 or more than a day ahead must not move the cursor: a mark from
    the future would hide every run that ends before it from the next incremental loads.
    """
    if value is None or not math.isfinite(value) or value < 0:
        return None
    if value > time.time() * 1000.0 + FUTURE_SLACK_MS:
        return None
    return int(value)


def read_cursor(conn: Connection, source_id: int) -> Cursor:
    """The stored cursor of a source (empty for a new source)."""
    row = conn.execute(select(EtlState).where(EtlState.source_id == source_id)).first()
    if row is None:
        return Cursor()
    state = row._mapping
    return Cursor(
        end_time_ms=state["end_time_ms"],
        end_time_ids=set(state["end_time_boundary_ids"] or ()),
        heartbeat_ms=state["heartbeat_ms"],
        heartbeat_ids=set(state["heartbeat_boundary_ids"] or ()),
        models_updated_ms=state["models_updated_ms"],
    )


def write_cursor(conn: Connection, source_id: int, cursor: Cursor, summary: dict[str, Any]) -> None:
    """Store the cursor and the load's summary (inside the load's transaction)."""
    values = {
        "end_time_ms": cursor.end_time_ms,
        "end_time_boundary_ids": sorted(cursor.end_time_ids),
        "heartbeat_ms": cursor.heartbeat_ms,
        "heartbeat_boundary_ids": sorted(cursor.heartbeat_ids),
        "models_updated_ms": cursor.models_updated_ms,
        "last_load_at": datetime.now(UTC),
        "last_summary": summary,
    }
    done = conn.execute(update(EtlState).where(EtlState.source_id == source_id).values(values))
    if done.rowcount == 0:
        conn.execute(insert(EtlState).values(source_id=source_id, **values))


def acquire_load_lock(conn: Connection, *, lock_timeout_s: float) -> None:
    """Take the ledger-wide ETL lock for the current transaction.

    On SQLite the transaction was opened with ``BEGIN IMMEDIATE`` (see ``engine``), which is
    the lock; here it only has to be confirmed.

    Raises:
        EtlLockedError: another ETL still holds the lock after ``lock_timeout_s``.
    """
    if conn.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + lock_timeout_s
    # keyed by schema too: ledgers in other schemas of the same database do not wait
    take = text("SELECT pg_try_advisory_xact_lock(:k, hashtext(current_schema()))")
    while not conn.execute(take, {"k": LOCK_KEY_INT4}).scalar():
        if time.monotonic() >= deadline:
            raise EtlLockedError(locked_message(lock_timeout_s))
        time.sleep(0.2)


def locked_message(lock_timeout_s: float) -> str:
    """The message of ``EtlLockedError``."""
    return (
        f"another carbonledger ETL is loading this ledger (waited {lock_timeout_s:g} s): "
        "let it finish and run again, or raise --lock-timeout"
    )
