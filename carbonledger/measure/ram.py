"""RAM energy estimate: 0.3725 W per GB of memory (Green Algorithms), when RAPL DRAM is absent.

Lannelongue, Grealey and Inouye, "Green Algorithms: Quantifying the Carbon Footprint of
Computation", Advanced Science 2021: memory power is 0.3725 W per GB. In ``device``
attribution the whole installed memory is charged; in ``process`` attribution the ``Meter``
scales the figure by the process tree's share of resident memory. 1 GB = 2**30 bytes here, as
``psutil`` and CodeCarbon count it. The source needs no sampling: power is constant.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from carbonledger.measure.base import METHOD_RAM_ESTIMATE, Component

W_PER_GB = 0.3725
BYTES_PER_GB = 2**30


def total_ram_gb() -> float:
    """Installed memory in GB (2**30 bytes)."""
    import psutil

    return psutil.virtual_memory().total / BYTES_PER_GB


class RamEstimateSource:
    """``W_PER_GB * ram_gb`` watts, integrated over time."""

    component: Component = "ram"
    method = METHOD_RAM_ESTIMATE
    sample_period_s: float | None = None

    def __init__(
        self,
        ram_gb: float,
        *,
        w_per_gb: float = W_PER_GB,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ram_gb = ram_gb
        self.power_w = ram_gb * w_per_gb
        self.devices: tuple[str, ...] = (f"ram-{ram_gb:.1f}GB",)
        self._clock = clock
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._t_end: float | None = None

    def start(self) -> None:
        """Start the clock; idempotent."""
        with self._lock:
            if self._t0 is None:
                self._t0 = self._clock()

    def energy_j(self) -> float:
        """Estimated RAM energy since ``start`` in joules."""
        with self._lock:
            if self._t0 is None:
                return 0.0
            end = self._t_end if self._t_end is not None else self._clock()
            return self.power_w * max(0.0, end - self._t0)

    def pop_peak_power_w(self) -> float:
        """Constant power: the peak is the power itself."""
        return self.power_w if self._t0 is not None else 0.0

    def close(self) -> None:
        """Freeze the energy; idempotent."""
        with self._lock:
            if self._t0 is not None and self._t_end is None:
                self._t_end = self._clock()
