"""Never hurt training: every hook runs its own code through :func:`guarded`.

An exception inside the plugin is logged once per (place, exception type) and swallowed; the
user's MLflow call always proceeds as if the plugin were absent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger("carbonledger.mlflow_plugin")

T = TypeVar("T")

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.RLock()  # re-entrant: reports can come from the SIGTERM handler


def report_once(where: str, exc: BaseException) -> None:
    """Log ``exc`` as a warning the first time this kind happens at ``where``."""
    key = (where, type(exc).__name__)
    with _seen_lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.warning(
        "carbonledger: %s failed (%s: %s); training continues, this warning is shown once",
        where,
        type(exc).__name__,
        exc,
    )


def warn_once(where: str, message: str) -> None:
    """Log ``message`` as a warning once per ``where``."""
    key = (where, message)
    with _seen_lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.warning("carbonledger: %s", message)


def guarded(where: str, fn: Callable[..., T], *args: object, default: T | None = None) -> T | None:
    """Call ``fn(*args)``; on any exception report it once and return ``default``."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the plugin must never break training
        report_once(where, exc)
        return default


def reset_reports() -> None:
    """Forget which failures were reported (tests)."""
    with _seen_lock:
        _seen.clear()
