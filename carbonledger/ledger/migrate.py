"""Alembic migrations of the ledger, run from code (``carbonledger db upgrade|downgrade``).

The migration scripts live in ``migrations/`` at the repository root; a wheel carries a copy
as ``carbonledger/_migrations`` (see ``setup.py``), which is used when present. Checking that a
ledger is current (every ETL pass) imports no Alembic: the head is read from the scripts'
``revision``/``down_revision`` lines, the ledger's revision from ``alembic_version``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from carbonledger.errors import LedgerError

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*['\"]?([0-9a-f]+|None)['\"]?", re.M)


def head_revision() -> str:
    """The newest migration revision shipped with this version of carbonledger.

    The one revision no script names as its ``down_revision`` (Alembic's head of a linear
    history), read as text so a pass does not import Alembic.

    Raises:
        LedgerError: no migration scripts, or more than one head.
    """
    return _head(migrations_dir())


def script_revisions(folder: Path) -> dict[str, str | None]:
    """``revision -> down_revision`` of the Alembic scripts in ``folder``, read as text.

    Also reads MLflow's own migrations (``carbonledger.etl.store_schema``).
    """
    parents: dict[str, str | None] = {}
    for script in folder.glob("*.py"):
        found = dict((bool(down), rev) for down, rev in _REVISION.findall(script.read_text()))
        if False in found:
            parents[found[False]] = found.get(True) if found.get(True) != "None" else None
    return parents


@lru_cache(maxsize=4)
def _head(folder: Path) -> str:
    parents = script_revisions(folder / "versions")
    heads = sorted(set(parents) - set(parents.values()))
    if len(heads) != 1:
        raise LedgerError(
            f"the ledger migrations have {len(heads)} heads ({', '.join(heads) or 'none'}): "
            "reinstall carbonledger"
        )
    return heads[0]


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
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    if len(rows) > 1:
        raise LedgerError(
            f"the ledger is at several revisions ({', '.join(r[0] for r in rows)}): "
            "run `carbonledger db upgrade --ledger-url ...`"
        )
    return rows[0][0] if rows else None


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
