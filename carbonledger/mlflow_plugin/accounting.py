"""Charging device energy to the runs active in this process.

One process-wide meter window is open while at least one run is tracked. At every event (a
run starts or ends, a flush) the window is read and the energy since the previous read is
split over the *independent* runs active during that interval:

* a **root** run (no tracked parent in this process) gets ``delta / n`` where ``n`` is the
  number of roots active in the interval (runs in different threads share the devices by
  time share);
* a **nested** run gets exactly what its root gets while it is active, so a parent's total is
  inclusive of its children and nothing is counted twice (see docs/plugin.md).

The meter's GPU remainder of shared GPUs (``WindowResult.remainder_of("gpu")``) is passed
through the same way, into ``RunTracker.gpu_remainder_kwh``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from carbonledger.mlflow_plugin.tracker import COMPONENTS, RunTracker


def _default_meter() -> Any:
    from carbonledger.measure import shared_meter

    return shared_meter()


# Seam for tests and for carbonledger.testing: returns an object with open_window()/hardware().
meter_factory: Callable[[], Any] = _default_meter
# The first failure to open the meter (device detection, NVML init): kept for the process, so
# later runs are not metered either and do not pay for detection again (reset_meter_failure).
_open_failure: Exception | None = None


def reset_meter_failure() -> None:
    """Forget a failed meter start, so the next run tries again (tests, after a fix)."""
    global _open_failure
    _open_failure = None


class Accountant:
    """Owns the process window and the set of active trackers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._window: Any = None
        self._meter: Any = None
        self._last_kwh: dict[str, float] = {}
        self._last_remainder_kwh = 0.0
        self._last_s = 0.0
        self._methods: dict[str, tuple[str, bool]] = {}
        self._hardware_tags: dict[str, str] = {}
        self._attribution = "device"
        self.active: dict[str, RunTracker] = {}

    def _open(self) -> None:
        global _open_failure
        if _open_failure is not None:
            raise _open_failure  # detection failed once in this process: do not probe again
        try:
            self._meter = meter_factory()
            self._window = self._meter.open_window()
        except Exception as exc:
            _open_failure = exc
            raise
        try:
            hw = self._meter.hardware()
            self._hardware_tags = {k: str(v) for k, v in hw.as_tags().items()}
        except Exception:  # noqa: BLE001 - hardware tags are best effort
            self._hardware_tags = {}
        first = self._window.read()
        self._last_kwh = {c: first.energy_of(c) for c in COMPONENTS}
        self._last_remainder_kwh = _gpu_remainder_kwh(first)
        self._last_s = first.end_s
        self._absorb(first)

    def _absorb(self, result: Any) -> None:
        self._methods = {c: (e.method, bool(e.measured)) for c, e in result.components.items()}
        self._attribution = getattr(result, "attribution", "device")

    def advance(self) -> None:
        """Read the window and charge the energy since the last read to the active runs."""
        with self._lock:
            if self._window is None:
                return
            result = self._window.read()
            now = result.end_s
            delta = {
                c: max(0.0, result.energy_of(c) - self._last_kwh.get(c, 0.0)) for c in COMPONENTS
            }
            interval = max(0.0, now - self._last_s)
            remainder = _gpu_remainder_kwh(result)
            delta_remainder = max(0.0, remainder - self._last_remainder_kwh)
            self._last_kwh = {c: result.energy_of(c) for c in COMPONENTS}
            self._last_remainder_kwh = remainder
            self._last_s = now
            self._absorb(result)
            roots = [t for t in self.active.values() if t.root is None]
            if not roots:
                return
            share = {c: v / len(roots) for c, v in delta.items() if c in result.components}
            for t in self.active.values():
                t.charge(share, interval, now)
                t.gpu_remainder_kwh += delta_remainder / len(roots)
                t.methods = dict(self._methods)
                t.attribution = self._attribution

    def start(self, tracker: RunTracker) -> None:
        """Begin charging ``tracker`` (nested under its parent when the parent is tracked)."""
        with self._lock:
            if tracker.run_id in self.active:
                return
            if self._window is None:
                self._open()
            else:
                self.advance()
            parent = self.active.get(tracker.parent_id) if tracker.parent_id else None
            tracker.parent = parent
            tracker.root = (parent.root or parent) if parent is not None else None
            tracker.start_s = self._last_s
            tracker.last_read_s = self._last_s
            tracker.methods = dict(self._methods)
            tracker.hardware_tags = dict(self._hardware_tags)
            tracker.attribution = self._attribution
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
                self._close()
            return tracker

    def _close(self) -> None:
        window, self._window = self._window, None
        if window is not None:
            try:
                window.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def trackers(self) -> list[RunTracker]:
        """The active trackers (a copy)."""
        with self._lock:
            return list(self.active.values())


def _gpu_remainder_kwh(result: Any) -> float:
    """The window's GPU remainder (0 for results without one, e.g. test fakes)."""
    remainder_of = getattr(result, "remainder_of", None)
    return float(remainder_of("gpu")) if remainder_of is not None else 0.0


def _top(t: RunTracker | None) -> RunTracker | None:
    while t is not None and t.parent is not None:
        t = t.parent
    return t


def _live_ancestor(t: RunTracker | None, active: dict[str, RunTracker]) -> RunTracker | None:
    while t is not None and t.run_id not in active:
        t = t.parent
    return t


_accountant = Accountant()


def accountant() -> Accountant:
    """The process-wide accountant."""
    return _accountant


def reset() -> None:
    """Drop every tracker and close the window (tests, fork)."""
    global _accountant
    with _accountant._lock:
        _accountant._close()
    _accountant = Accountant()
    reset_meter_failure()
