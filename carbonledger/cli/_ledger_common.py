"""Helpers shared by the ledger commands (``db``, ``etl``, ``import``): options, errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

LEDGER_URL_HELP = "SQLAlchemy URL of the ledger (default: CARBONLEDGER_LEDGER_URL, a SQLite file)."
READ_URL_HELP = (
    "SQLAlchemy URL to read, opened read-only, e.g. a PostgreSQL read replica (default: "
    "--ledger-url, else CARBONLEDGER_READ_DATABASE_URL, else CARBONLEDGER_LEDGER_URL)."
)


def redact_uri(uri: str) -> str:
    """Hide the password of any ``scheme://user:password@host`` URI."""
    from carbonledger.ledger.engine import redact_uri as _redact

    return _redact(uri)


def resolve_ledger_url(url: str | None) -> str:
    """The ledger URL from the option, else the settings."""
    from carbonledger.settings import get_settings

    return url or get_settings().ledger_url.get_secret_value()


def resolve_read_url(read_url: str | None, ledger_url: str | None) -> str:
    """The URL a read-only command reads: ``--read-url``, ``--ledger-url``, then the settings.

    An option beats a variable: ``--ledger-url`` alone reads that ledger even where
    ``CARBONLEDGER_READ_DATABASE_URL`` is set.
    """
    from carbonledger.settings import get_settings

    return read_url or ledger_url or get_settings().read_url()


def fail(message: str, secret_url: str | None = None) -> typer.Exit:
    """Print ``error: message`` on stderr (secrets scrubbed) and return the exit to raise."""
    if secret_url:
        from sqlalchemy.engine import make_url

        try:
            password = make_url(secret_url).password
        except Exception:
            password = None
        if password:
            message = message.replace(str(password), "***")
    typer.echo(f"error: {redact_uri(message)}", err=True)
    return typer.Exit(1)


@contextmanager
def ledger_errors(url: str, *, option: str = "--ledger-url") -> Iterator[None]:
    """Turn carbonledger and database errors into one actionable line and exit status 1.

    ``option`` is the command-line option that sets ``url``, named in the message.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from carbonledger.errors import CarbonLedgerError, first_line
    from carbonledger.ledger.engine import redact

    try:
        yield
    except CarbonLedgerError as exc:
        raise fail(str(exc), url) from None
    except SQLAlchemyError as exc:
        raise fail(
            f"the ledger at {redact(url)} failed: {first_line(exc)}. Check {option}, that the "
            "database is up, and run `carbonledger db upgrade`",
            url,
        ) from None
