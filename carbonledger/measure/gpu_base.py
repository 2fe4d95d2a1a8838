"""What the NVIDIA and AMD GPU sources share.

The split tally, registry membership, the short-window interpolation and the close-once
lifecycle; the vendor modules (``nvml_source``, ``amd``) read the devices.
"""

from __future__ import annotations

import os
import threading

from carbonledger.measure import short_window
from carbonledger.measure.base import Component, LockedSource, SourceReading
from carbonledger.measure.gpu_registry import MeteredRegistry
from carbonledger.measure.gpu_share import Tally


class GpuSourceBase(LockedSource):
    """A GPU source whose devices other processes may share.

    A subclass sets ``mode`` (``counter`` or ``power``), ``method``, ``devices`` and
    ``sample_period_s``, implements ``start``, ``_advance`` (adding each device interval to
    ``_tally``) and ``_power_parts`` (fresh power readings for a short window), and calls
    ``_close_once`` from ``close``.

    Args:
        registry: the registry of metered processes (``None``: no other process is known).
        pid: the process charged (default: this one).
    """

    component: Component = "gpu"
    mode: str
    method: str
    devices: tuple[str, ...]

    def __init__(self, *, registry: MeteredRegistry | None, pid: int | None) -> None:
        self.pid = pid if pid is not None else os.getpid()
        self.notes: list[str] = []
        self.counter_period_s: float | None = None
        self._registry = registry
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._peak_w = 0.0
        self._tally = Tally()

    def set_metering(self, active: bool) -> None:
        """Register this process as metering its GPUs while a window is open."""
        if self._registry is not None:
            note = self._registry.announce(active, self.pid, self.devices)
            if note and note not in self.notes:
                self.notes.append(note)

    def _close_once(self) -> bool:
        """Mark closed and leave the registry; False when it was already closed."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        if self._registry is not None:
            self._registry.leave()
        return True

    def _live(self) -> bool:
        return self._started and not self._closed

    def _energy_so_far_j(self) -> float:
        return self._tally.own_j

    def _reading_so_far(self) -> SourceReading:
        return self._tally.reading()

    def _power_parts(self) -> list[tuple[float, float, float]]:
        """Per device ``(fresh power_w, own fraction, remainder fraction)``; lock held."""
        raise NotImplementedError

    def short_window_j(self, duration_s: float) -> tuple[float, float, float] | None:
        """``(energy_j, remainder_j, device_j)`` of a window shorter than the counter period.

        Each GPU's fresh power reading times the window's length, split by the shares of its
        last interval; ``None`` when the window is not shorter than the period.
        """
        period = self.counter_period_s
        if self.mode != "counter" or period is None or duration_s >= period:
            return None
        with self._lock:
            parts = self._power_parts()
        return short_window.interpolate_j(parts, duration_s)
