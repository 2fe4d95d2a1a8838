"""Engines of the ledger (PostgreSQL in production, a SQLite file by default).

SQLite connections run in WAL mode with foreign keys on and a busy timeout; a connection
opened with ``execution_options(sqlite_begin="IMMEDIATE")`` takes SQLite's write lock when its
transaction begins, which is how two ETL processes exclude each other on SQLite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from carbonledger.errors import ConfigError
from carbonledger.settings import get_settings

SQLITE_BUSY_TIMEOUT_S = 60.0
_USERINFO = re.compile(r"(//[^/:@]*):[^@/]*@")


def ledger_url(
    url: str | None = None, *, where: str = "CARBONLEDGER_LEDGER_URL or --ledger-url"
) -> URL:
    """Parse ``url`` (default: ``CARBONLEDGER_LEDGER_URL``) into a SQLAlchemy URL.

    Args:
        url: the URL; ``None`` reads the setting.
        where: where the URL was set, named in the error.

    Raises:
        ConfigError: the URL cannot be parsed; the message never shows the password.
    """
    raw = url if url is not None else get_settings().ledger_url.get_secret_value()
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "the ledger URL is not a SQLAlchemy URL: use e.g. sqlite:///ledger.db or "
            f"postgresql+psycopg://user:pass@host/db ({where})"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def redact(url: str | URL) -> str:
    """Render a URL for messages and logs, with the password hidden."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def redact_uri(uri: str) -> str:
    """Hide the password of any ``scheme://user:password@host`` URI (MLflow or ledger)."""
    return _USERINFO.sub(r"\1:***@", uri)


def create_ledger_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """Create an engine for the ledger; SQLite files get their folder, WAL and a busy timeout."""
    parsed = url if isinstance(url, URL) else ledger_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_S})
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
