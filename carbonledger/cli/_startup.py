"""Start-up cost of a command: its imports, without the garbage collector's passes over them.

A command's imports (typer, pydantic, SQLAlchemy and the ledger's models, psycopg) create about
a million long-lived objects; the cyclic collector walks them again and again while they are
built and finds no garbage (~0.1 s of a ~1.5 s ``carbonledger etl`` no-change pass). Imports run
inside :func:`bulk_imports`; the collector is on again afterwards, for the command's own work.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bulk_imports() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block of imports (restored even on error)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
