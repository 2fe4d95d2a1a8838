"""Charging device energy to the runs active in this process.

One process-wide meter window is open while at least one run is tracked. At every event (a
run starts or ends, a flush) the window is read and the energy since the previous read is
split over the *independent* runs active during that interval:

* a **root** run (no tracked parent in this process) gets ``delta / n`` where ``n`` is the
  number of roots active in the interval (runs in different threads share the devices by
  time share);
* a **nested** run gets exactly what its root gets while it is active, so a parent's total is
  inclusive of its children and nothing is counted twice (see docs/plugin.md).

The meter's GPU remainder of shared GPUs (``WindowDelta.gpu_remainder_kwh``) is passed through
the same way, into ``RunTracker.gpu_remainder_kwh``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from carbonledger.mlflow_plugin.state import plugin_state
from carbonledger.mlflow_plugin.tracker import RunTracker
from carbonledger.mlflow_plugin.windows import WindowReader


def _default_meter() -> Any:
    from carbonledger.measure import shared_meter

    return shared_meter()


# Seam for tests and for carbonledger.testing: returns an object with open_window()/hardware().
meter_factory: Callable[[], Any] = _default_meter


class Accountant:
    """Owns the process window and the set of active trackers.

    The first failure to open the meter (device detection, NVML init) is kept in the process
    state: later runs are not metered either and do not pay for detection again
    (:func:`carbonledger.mlflow_plugin.reset` forgets it).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._reader: WindowReader | None = None
        self.active: dict[str, RunTracker] = {}

    def _open(self) -> None:
        state = plugin_state()
        if state.meter_failure is not None:
            raise state.meter_failure  # detection failed once in this process: do not probe again
        try:
            self._reader = WindowReader(meter_factory())
        except Exception as exc:
            state.meter_failure = exc
            raise

    def advance(self) -> None:
        """Read the window and charge the energy since the last read to the active runs."""
        with self._lock:
            reader = self._reader
            if reader is None:
                return
            delta = reader.read()
            roots = [t for t in self.active.values() if t.root is None]
            if not roots:
                return
            share = {c: v / len(roots) for c, v in delta.energy_kwh.items()}
            for t in self.active.values():
                t.charge(share, delta.interval_s, delta.end_s)
                t.gpu_remainder_kwh += delta.gpu_remainder_kwh / len(roots)
                t.methods = dict(reader.methods)
                t.attribution = reader.attribution

    def start(self, tracker: RunTracker) -> None:
        """Begin charging ``tracker`` (nested under its parent when the parent is tracked)."""
        with self._lock:
            if tracker.run_id in self.active:
                return
            if self._reader is None:
                self._open()
            else:
                self.advance()
            reader = self._reader
            assert reader is not None
            parent = self.active.get(tracker.parent_id) if tracker.parent_id else None
            tracker.parent = parent
            tracker.root = (parent.root or parent) if parent is not None else None
            tracker.start_s = reader.last_s
            tracker.last_read_s = reader.last_s
            tracker.methods = dict(reader.methods)
            tracker.hardware_tags = dict(reader.hardware_tags)
            tracker.attribution = reader.attribution
            self.active[tracker.run_id] = tracker

    def stop(self, run_id: str) -> RunTracker | None:
        """Charge up to now and stop charging the run; close the window after the last run."""
        with self._lock:
            tracker = self.active.get(run_id)
            if tracker is None:
                return None
            self.advance()
            del self.active[run_id]
            tracker.ended = True
            for t in self.active.values():
                t.parent = _live_ancestor(t.parent, self.active)
            for t in self.active.values():
                t.root = _top(t.parent)
            if not self.active:
                self.close()
            return tracker

    def close(self) -> None:
        """Close the window (the next run opens a new one)."""
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


def _top(t: RunTracker | None) -> RunTracker | None:
    while t is not None and t.parent is not None:
        t = t.parent
    return t


def _live_ancestor(t: RunTracker | None, active: dict[str, RunTracker]) -> RunTracker | None:
    while t is not None and t.run_id not in active:
        t = t.parent
    return t


def accountant() -> Accountant:
    """The process-wide accountant."""
    return plugin_state().accountant
