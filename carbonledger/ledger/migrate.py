"""Alembic migrations of the ledger, run from code (``carbonledger db upgrade|downgrade``).

The migration scripts live in ``migrations/`` at the repository root; a wheel carries a copy
as ``carbonledger/_migrations`` (see ``setup.py``), which is used when present.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import Engine, inspect

from carbonledger.errors import LedgerError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def migrations_dir() -> Path:
    """Folder of the Alembic environment: the packaged copy, else the repository's."""
    for candidate in (_PACKAGE_DIR / "_migrations", _PACKAGE_DIR.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise LedgerError(
        "the ledger migrations are missing from this installation: reinstall carbonledger "
        "(pip install --force-reinstall carbonledger)"
    )


def _config(engine: Engine | None = None) -> Config:

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this version of carbonledger."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise LedgerError("no ledger migrations found: reinstall carbonledger")
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the ledger schema to ``revision`` (default: the newest)."""
    from alembic import command

    command.upgrade(_config(engine), revision)


def downgrade(engine: Engine, revision: str = "-1") -> None:
    """Downgrade the ledger schema to ``revision`` (``base`` removes every table)."""
    from alembic import command

    command.downgrade(_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the ledger is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return MigrationContext.configure(conn).get_current_revision()


def require_current(engine: Engine) -> None:
    """Fail unless the ledger schema is at the newest revision.

    Raises:
        LedgerError: the schema is missing or outdated; the message says to upgrade.
    """
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise LedgerError(
            f"the ledger schema is {state}, this carbonledger needs {head}: "
            "run `carbonledger db upgrade --ledger-url ...` first"
        )
