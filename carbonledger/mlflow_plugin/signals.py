"""SIGTERM: a final flush and a KILLED status, chained to whatever handler was there.

:func:`chain_signal` is the one way the plugin and the inference meter take a signal: only
from the main thread and only when the current handler is the default or a Python callable
(a handler set from C or ``SIG_IGN`` is left alone, with one warning: the plugin cannot chain
it safely). When the signal comes, the action runs, then the previous behaviour: the previous
Python handler is called, or the default action (termination) is re-delivered. An action
never waits on MLflow's retries nor on a lock the interrupted thread may hold (the plugin's
locks it takes are re-entrant).

The training plugin's action (installed with the first tracked run) writes the final flush
of every tracked run and sets ``KILLED`` on the runs this process owns.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from carbonledger.mlflow_plugin.safety import report_once, warn_once
from carbonledger.mlflow_plugin.state import plugin_state

TRAINING = "training"


class SignalChain:
    """A handler that runs ``action`` and then the handler it replaced.

    Args:
        owner: who installed it (one chain per owner and process).
        signum: the signal.
        action: what to do first; its exceptions are reported once as ``where``.
        where: the place named in the warning when ``action`` fails.
        previous: the handler that was installed before (a callable or ``SIG_DFL``).
    """

    def __init__(
        self, owner: str, signum: int, action: Callable[[], None], where: str, previous: Any
    ) -> None:
        self.owner = owner
        self.signum = signum
        self.action = action
        self.where = where
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        """Handle the signal: the action, then the previous handler or the default action."""
        try:
            self.action()
        except Exception as exc:  # noqa: BLE001
            report_once(self.where, exc)
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def restore(self) -> None:
        """Put the previous handler back (main thread only; tests and :func:`state.reset`)."""
        if threading.current_thread() is threading.main_thread():
            previous = self.previous if self.previous is not None else signal.SIG_DFL
            signal.signal(self.signum, previous)


def _installed(owner: str, handler: Any) -> SignalChain | None:
    """The chain of ``owner`` among the handlers chained from ``handler``, if any."""
    while isinstance(handler, SignalChain):
        if handler.owner == owner:
            return handler
        handler = handler.previous
    return None


def chain_signal(
    owner: str,
    action: Callable[[], None],
    *,
    where: str,
    signum: int = signal.SIGTERM,
) -> bool:
    """Run ``action`` on ``signum`` before the current handler; once per owner and process.

    Args:
        owner: who installs it (``training``, ``inference``); a second call is a no-op.
        action: what to do when the signal comes (bounded: no retries, no blocking locks).
        where: the place a failure of ``action`` is reported as.
        signum: the signal (default SIGTERM).

    Returns:
        Whether the handler is installed (False off the main thread, or when the current
        handler cannot be chained).
    """
    state = plugin_state()
    if owner in state.signal_chains:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    name = signal.Signals(signum).name
    try:
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or previous is None:
            warn_once(name.lower(), f"{name} handler not chained (ignored or set outside Python)")
            return False
        chain = _installed(owner, previous)  # still installed from before a reset
        if chain is None:
            chain = SignalChain(owner, signum, action, where, previous)
            signal.signal(signum, chain)
        state.signal_chains[owner] = chain
        return True
    except (ValueError, OSError) as exc:
        report_once(f"{name} handler install", exc)
        return False


def ensure_installed() -> bool:
    """Install the training plugin's SIGTERM handler once; returns whether it is installed."""
    return chain_signal(TRAINING, lambda: terminate_all("KILLED"), where="SIGTERM final flush")


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
