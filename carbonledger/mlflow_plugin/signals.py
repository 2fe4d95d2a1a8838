"""SIGTERM: a final flush and a KILLED status, chained to whatever handler was there.

Installed with the first tracked run, only from the main thread and only when the current
handler is the default or a Python callable (a handler set from C or ``SIG_IGN`` is left
alone: the plugin cannot chain it safely). After the flush the previous behaviour runs: the
previous Python handler is called, or the default action (termination) is re-delivered.
The handler never waits on MLflow's retries nor on a lock the interrupted thread may hold (the
plugin's locks it takes are re-entrant).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

from carbonledger.mlflow_plugin.safety import report_once, warn_once

_installed = False
_previous: Any = None


def ensure_installed() -> bool:
    """Install the handler once; returns whether it is installed."""
    global _installed, _previous
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:
            warn_once("sigterm", "SIGTERM handler not chained (ignored or set outside Python)")
            return False
        _previous = previous
        signal.signal(signal.SIGTERM, _on_sigterm)
        _installed = True
    except (ValueError, OSError) as exc:
        report_once("SIGTERM handler install", exc)
    return _installed


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    try:
        terminate_all("KILLED")
    except Exception as exc:  # noqa: BLE001
        report_once("SIGTERM final flush", exc)
    previous = _previous
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def terminate_all(status: str) -> None:
    """Final-flush every tracked run and set ``status`` on the runs this process owns.

    Runs in a signal handler, so nothing here may wait long or retry: the final flushes and
    the statuses go through :mod:`transport` (no retries) within one ``flush_timeout_s`` in
    all, and what the server does not take is journaled (status included) for replay.
    MLflow's own client is not used: it retries for minutes against a server that is down.
    """
    from carbonledger.mlflow_plugin import flusher, transport
    from carbonledger.mlflow_plugin.journal import Entry
    from carbonledger.mlflow_plugin.registry import registry

    with transport.deadline():
        for tracker in registry().trackers():
            owner = tracker.node is None or tracker.node.rank == 0
            registry().end(tracker.run_id)
            if owner and not getattr(tracker, "attached", False):
                ended_ms = transport.now_ms()
                flusher.deliver(
                    Entry(
                        tracker.tracking_uri,
                        tracker.run_id,
                        created_ms=ended_ms,
                        status=status,
                        end_time_ms=ended_ms,
                    )
                )


def reset() -> None:
    """Restore the previous handler (tests)."""
    global _installed, _previous
    if _installed and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous if _previous is not None else signal.SIG_DFL)
    _installed, _previous = False, None
