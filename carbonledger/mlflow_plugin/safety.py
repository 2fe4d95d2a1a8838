"""Never hurt training: every hook runs its own code through :func:`guarded`.

An exception inside the plugin is logged once per (place, exception type) and swallowed; the
user's MLflow call always proceeds as if the plugin were absent. Which failures were already
reported is part of the plugin's process state (:mod:`carbonledger.mlflow_plugin.state`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from carbonledger.mlflow_plugin.state import plugin_state

logger = logging.getLogger("carbonledger.mlflow_plugin")

T = TypeVar("T")


def _first_time(key: tuple[str, str]) -> bool:
    state = plugin_state()
    with state.lock:  # re-entrant: reports can come from the SIGTERM handler
        if key in state.reported:
            return False
        state.reported.add(key)
        return True


def report_once(where: str, exc: BaseException) -> None:
    """Log ``exc`` as a warning the first time this kind happens at ``where``."""
    if _first_time((where, type(exc).__name__)):
        logger.warning(
            "carbonledger: %s failed (%s: %s); training continues, this warning is shown once",
            where,
            type(exc).__name__,
            exc,
        )


def warn_once(where: str, message: str) -> None:
    """Log ``message`` as a warning once per ``where``."""
    if _first_time((where, message)):
        logger.warning("carbonledger: %s", message)


def guarded(where: str, fn: Callable[..., T], *args: object, default: T | None = None) -> T | None:
    """Call ``fn(*args)``; on any exception report it once and return ``default``."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the plugin must never break training
        report_once(where, exc)
        return default
