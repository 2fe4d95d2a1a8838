"""How current the database a report or the app reads is: its newest ETL pass, replica lag.

The app and ``carbonledger report`` may read a PostgreSQL streaming replica
(``CARBONLEDGER_READ_DATABASE_URL``). A replica behind its primary is not an error: it holds
the ledger as of an earlier pass, and :func:`freshness` says which (the newest ``etl_state``
commit it holds) and, on a hot standby, how long ago it replayed the primary's last change.
Only the database read is asked: the app keeps working from a replica while the primary is
down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from carbonledger.ledger.models import EtlState


@dataclass(frozen=True, slots=True)
class Freshness:
    """What the database read holds.

    Attributes:
        last_load_at: when the newest ETL pass it holds committed (UTC); ``None``: none yet.
        replica: it is a replica (a hot standby, or a read URL apart from the ledger URL).
        standby: it is a PostgreSQL hot standby (``pg_is_in_recovery()``).
        replay_age_s: seconds since the standby replayed the primary's last transaction.
        replay_pending: the standby has received changes it has not replayed yet.
    """

    last_load_at: datetime | None
    replica: bool = False
    standby: bool = False
    replay_age_s: float | None = None
    replay_pending: bool = False

    def describe(self, now: datetime | None = None) -> str:
        """One sentence for a page caption or a report header."""
        now = now or datetime.now(UTC)
        if self.last_load_at is None:
            text_ = "No ETL pass loaded into this database yet."
        else:
            age = _age(max(0.0, (now - self.last_load_at).total_seconds()))
            text_ = (
                f"Figures as of the ETL pass of {self.last_load_at:%Y-%m-%d %H:%M} UTC ({age} ago)."
            )
        if not self.replica:
            return text_
        text_ += " Read from a replica: runs loaded since its last update are not shown yet"
        if self.standby and self.replay_age_s is not None:
            text_ += f"; it replayed the primary's last change {_age(self.replay_age_s)} ago"
            if self.replay_pending:
                text_ += " and is replaying more"
        return text_ + "."


def freshness(engine: Engine, *, replica: bool = False) -> Freshness:
    """What the database behind ``engine`` holds; never raises for a missing grant.

    Args:
        engine: a reporting engine (:func:`carbonledger.reporting.db.reporting_engine`).
        replica: the caller reads a URL apart from the ledger URL (a replica).
    """
    last: datetime | None = None
    try:
        with engine.connect() as conn:
            last = conn.execute(select(func.max(EtlState.last_load_at))).scalar()
    except SQLAlchemyError:  # a role without SELECT on etl_state: the figures still show
        last = None
    if isinstance(last, str):  # SQLite without the column type (a bare expression)
        last = datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if engine.dialect.name != "postgresql":
        return Freshness(last, replica=replica)
    with engine.connect() as conn:
        standby, age_s, pending = conn.execute(
            text(
                "SELECT pg_is_in_recovery(), "
                "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), "
                "COALESCE(pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn(), false)"
            )
        ).one()
    return Freshness(
        last,
        replica=replica or bool(standby),
        standby=bool(standby),
        replay_age_s=float(age_s) if standby and age_s is not None else None,
        replay_pending=bool(standby and pending),
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
