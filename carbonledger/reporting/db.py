"""Read-only access to the ledger for the app and the reports.

``reporting_engine`` opens the database the read-only surfaces read
(``CARBONLEDGER_READ_DATABASE_URL``, e.g. a PostgreSQL streaming replica; else the ledger)
so that no statement can write: PostgreSQL sessions are ``default_transaction_read_only``,
SQLite connections ``PRAGMA query_only``. ``frame`` runs one bound-parameter statement and
returns a ``pandas.DataFrame``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, bindparam, event, text

from carbonledger.errors import LedgerError, ReportingError, first_line
from carbonledger.ledger.engine import create_ledger_engine, ledger_url, redact


def reporting_engine(url: str | None = None) -> Engine:
    """An engine on the ledger that refuses writes.

    Args:
        url: the database to read (default: ``CARBONLEDGER_READ_DATABASE_URL``, else
            ``CARBONLEDGER_LEDGER_URL``).

    Raises:
        ConfigError: the URL is not a SQLAlchemy URL.
        LedgerError: the ledger has no reporting views yet (run ``carbonledger db upgrade``).
    """
    from carbonledger.settings import get_settings

    raw = url if url is not None else get_settings().read_url()
    parsed = ledger_url(raw, where="CARBONLEDGER_READ_DATABASE_URL or --read-url")
    if parsed.get_backend_name() == "postgresql":
        engine = create_ledger_engine(
            parsed, connect_args={"options": _pg_options(parsed.query.get("options"))}
        )
    else:
        engine = create_ledger_engine(parsed)

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

    try:
        conn = engine.connect()
    except Exception as exc:
        engine.dispose()
        raise LedgerError(
            f"cannot reach the ledger at {redact(parsed)}: {first_line(exc)}. Check the URL "
            "(--read-url, --ledger-url, CARBONLEDGER_READ_DATABASE_URL or "
            "CARBONLEDGER_LEDGER_URL) and that the database is up"
        ) from None
    try:
        with conn:
            conn.execute(text("SELECT 1 FROM rollup_team_month WHERE 1 = 0"))
    except Exception:
        engine.dispose()
        raise LedgerError(
            f"the ledger at {redact(parsed)} has no reporting tables: run "
            "`carbonledger db upgrade` and `carbonledger etl` first (on the primary, when "
            "this is a read replica)"
        ) from None
    return engine


def _pg_options(existing: Any) -> str:
    base = existing if isinstance(existing, str) else " ".join(existing or ())
    return f"{base} -c default_transaction_read_only=on".strip()


def frame(engine: Engine, sql: str, **params: Any) -> pd.DataFrame:
    """Run one SELECT with bound parameters; return its rows as a DataFrame.

    A list or tuple value is an expanding parameter (``WHERE id IN :ids``).

    Raises:
        ReportingError: a filter value holds a NUL character (no ledger text can contain one).
    """
    check_params(params)
    stmt = text(sql)
    lists = [k for k, v in params.items() if isinstance(v, list | tuple)]
    if lists:
        stmt = stmt.bindparams(*[bindparam(k, expanding=True) for k in lists])
    with engine.connect() as conn:
        result = conn.execute(stmt, params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


IN_CHUNK = 10_000  # values per expanding list: PostgreSQL takes at most 65,535 parameters


def frame_in(engine: Engine, sql: str, key: str, values: list[Any], **params: Any) -> pd.DataFrame:
    """:func:`frame` with ``key`` bound to ``values``, run ``IN_CHUNK`` values at a time.

    For a row-wise selection (``WHERE run_id IN :ids``), so the concatenated chunks are its
    rows whatever the list's length; an ``ORDER BY`` holds within each chunk only.
    """
    chunks = [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)] or [[]]
    parts = [frame(engine, sql, **params, **{key: chunk}) for chunk in chunks]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """Run one SELECT with bound parameters; return its single value.

    Raises:
        ReportingError: a filter value holds a NUL character.
    """
    check_params(params)
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def check_params(params: dict[str, Any]) -> None:
    """Refuse filter values the ledger cannot hold (a NUL character), naming the filter."""
    # PostgreSQL refuses NUL in text parameters with a driver error; say what to fix instead.
    for name, value in params.items():
        values = value if isinstance(value, list | tuple) else (value,)
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise ReportingError(
                f"filter {name!r} contains a NUL character: remove it from the filter text"
            )
