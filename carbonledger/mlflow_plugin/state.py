"""The plugin's process state in one object, with one :func:`reset` and a fork handler.

Everything the plugin (and the inference meter, which stands on it) keeps for the life of a
process lives in the :class:`PluginState` that :func:`plugin_state` returns: the run registry
and the accountant with its meter window, the flusher thread and the tracking URIs it
replays for, the resolved grid factors, the budget statuses read by the pre-flight, the
failures already reported, the hooks' CPU counters, the election locks held, the signal
handlers installed and the inference meters. Nothing is created at import: the registry and
the accountant are made on first use, the flusher thread with the first run.

:func:`reset` stops all of it (threads, windows, locks, signal handlers) and starts from a
clean state; tests call it between cases. A forked child (a DataLoader worker, a pre-fork
server's worker) starts with a clean state too (``os.register_at_fork``): the parent's
threads do not exist there, and its windows, runs, caches and locks stay the parent's. The
only thing a child keeps is the signal handlers, which the OS hands it installed.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carbonledger.mlflow_plugin.accounting import Accountant
    from carbonledger.mlflow_plugin.election import NodeLock
    from carbonledger.mlflow_plugin.factors import Factors
    from carbonledger.mlflow_plugin.flusher import Flusher
    from carbonledger.mlflow_plugin.preflight import BudgetInfo
    from carbonledger.mlflow_plugin.registry import Registry
    from carbonledger.mlflow_plugin.signals import SignalChain


class PluginState:
    """What the plugin holds in one process.

    Attributes:
        lock: guards the short bookkeeping below (re-entrant: a SIGTERM handler may run while
            the interrupted thread holds it).
        factors_lock: held while grid intensity and PUE are resolved (which may wait on a
            cloud metadata endpoint), so that nothing else waits on that.
        journal_lock: serialises this process's journal appends and rewrites (re-entrant).
        reported: (place, kind) of the failures already logged once.
        hook_stats: CPU seconds spent in the hooks and the number of hook calls.
        meter_failure: the first failure to open the meter; later runs do not probe again.
        factors: the grid factor, PUE and location tags, once resolved.
        flusher: the periodic flusher thread, once started.
        delivered_uris: tracking URIs that took a batch since the flusher last replayed.
        budget_cache: (tracking URI, model) -> (expiry on the monotonic clock, status).
        signal_chains: installed signal handlers by owner (``training``, ``inference``).
        node_locks: election locks this process holds.
        inference_meter: the process-wide ``carbonledger.inference.InferenceMeter``, if any.
        inference_meters: inference meters with a running thread (closed on SIGTERM).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.factors_lock = threading.RLock()
        self.journal_lock = threading.RLock()
        self.reported: set[tuple[str, str]] = set()
        self.hook_stats: dict[str, float] = {"hook_cpu_s": 0.0, "hook_calls": 0}
        self.meter_failure: Exception | None = None
        self.factors: Factors | None = None
        self.flusher: Flusher | None = None
        self.delivered_uris: set[str] = set()
        self.budget_cache: dict[tuple[str, str], tuple[float, BudgetInfo | None]] = {}
        self.signal_chains: dict[str, SignalChain] = {}
        self.node_locks: set[NodeLock] = set()
        self.inference_meter: Any = None
        self.inference_meters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._registry: Registry | None = None
        self._accountant: Accountant | None = None

    @property
    def registry(self) -> Registry:
        """Every run this process reports on (made on first use)."""
        from carbonledger.mlflow_plugin.registry import Registry

        return self._once("_registry", Registry)

    @property
    def accountant(self) -> Accountant:
        """The process window and the trackers it charges (made on first use)."""
        from carbonledger.mlflow_plugin.accounting import Accountant

        return self._once("_accountant", Accountant)

    def _once(self, attr: str, make: Any) -> Any:
        value = getattr(self, attr)
        if value is None:
            with self.lock:
                value = getattr(self, attr)
                if value is None:
                    value = make()
                    setattr(self, attr, value)
        return value

    def shutdown(self) -> None:
        """Close the inference meters, the flusher, the window, locks and signal handlers.

        Best effort: the signal handlers that were there before the plugin's are put back.
        """
        meters = [self.inference_meter, *self.inference_meters]
        for meter in dict.fromkeys(m for m in meters if m is not None):
            _quietly(meter.close)
        if self.flusher is not None:
            _quietly(self.flusher.stop)
        if self._accountant is not None:
            _quietly(self._accountant.close)
        for lock in list(self.node_locks):
            _quietly(lock.release)
        for chain in reversed(list(self.signal_chains.values())):
            _quietly(chain.restore)


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - shutting down is best effort
        pass


_state = PluginState()


def plugin_state() -> PluginState:
    """This process's plugin state."""
    return _state


def reset() -> None:
    """Stop everything the plugin runs in this process and start from a clean state.

    Closes the inference meters (their last windows are sent), stops the flusher thread,
    closes the meter window, releases the election locks, restores the previous signal
    handlers and forgets every tracker, cached factor, budget status and reported failure
    (a failed meter start included, so the next run tries the devices again). Tests call it
    between cases; runs still active are no longer metered.
    """
    global _state
    old, _state = _state, PluginState()
    old.shutdown()


def _after_fork_in_child() -> None:
    """A forked child starts clean: the parent's threads, windows and runs are not its own."""
    global _state
    old, _state = _state, PluginState()
    _state.signal_chains = dict(old.signal_chains)  # the OS keeps the handlers installed
    for lock in list(old.node_locks):  # the parent keeps its election: close the fd only
        _quietly(lock.forget)
    meter = sys.modules.get("carbonledger.measure.meter")  # only if this process measured
    if meter is not None:
        meter.forget_shared_meter()


os.register_at_fork(after_in_child=_after_fork_in_child)
