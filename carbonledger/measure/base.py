"""Types shared by every energy source and the ``Meter``.

A source exposes a monotonic cumulative energy counter in joules (``energy_j``), whatever
its native method; the ``Meter`` turns counter differences into windows. Units are in the
names: joules (``_j``), watts (``_w``), kilowatt-hours (``_kwh``), seconds (``_s``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Component = Literal["gpu", "cpu", "ram"]
COMPONENTS: tuple[Component, ...] = ("gpu", "cpu", "ram")
Attribution = Literal["device", "process"]

J_PER_KWH = 3_600_000.0


def j_to_kwh(energy_j: float) -> float:
    """Convert joules to kilowatt-hours."""
    return energy_j / J_PER_KWH


# Method names recorded with every figure (public: they appear in MLflow tags and the ledger).
METHOD_NVML_COUNTER = "nvml-energy-counter"
METHOD_NVML_POWER = "nvml-power-integration"
METHOD_RAPL = "rapl"
METHOD_CPU_ESTIMATE = "tdp-utilisation-estimate"
METHOD_RAM_RAPL = "rapl-dram"
METHOD_RAM_ESTIMATE = "ram-w-per-gb-estimate"
MEASURED_METHODS = frozenset({METHOD_NVML_COUNTER, METHOD_NVML_POWER, METHOD_RAPL, METHOD_RAM_RAPL})


@runtime_checkable
class EnergySource(Protocol):
    """One component's energy over one or more devices (e.g. all visible GPUs)."""

    component: Component
    method: str
    devices: tuple[str, ...]

    def start(self) -> None:
        """Open the devices and start any background sampling the method needs."""

    def energy_j(self) -> float:
        """Cumulative energy since ``start`` in joules; monotonic, wraparound handled."""

    def close(self) -> None:
        """Stop sampling and release the devices; idempotent."""


@runtime_checkable
class SampledSource(EnergySource, Protocol):
    """Optional extras of a source, used by the ``Meter`` when present.

    ``sample_period_s`` (not ``None``) asks the meter's one background thread to call
    ``sample()`` that often (power integration, estimates, RAPL wrap watch);
    ``pop_peak_power_w()`` returns the highest power the source saw since the last call.
    """

    sample_period_s: float | None

    def sample(self) -> None:
        """Take one sample (called from the sampler thread)."""

    def pop_peak_power_w(self) -> float:
        """Highest power in watts since the previous call (0.0 when unknown)."""


class LockedSource:
    """The ``sample``/``energy_j``/``pop_peak_power_w`` plumbing shared by the sources.

    A subclass sets ``_lock`` and ``_peak_w`` and implements ``_live()`` (started and not
    closed), ``_advance()`` (read or integrate up to now; called with the lock held) and
    ``_energy_so_far_j()``. Both the meter's sampler thread (``sample``) and window reads
    (``energy_j``) advance the source, so a read is always up to date.
    """

    _lock: threading.Lock
    _peak_w: float

    def _live(self) -> bool:
        raise NotImplementedError

    def _advance(self) -> None:
        raise NotImplementedError

    def _energy_so_far_j(self) -> float:
        raise NotImplementedError

    def sample(self) -> None:
        """Read or integrate up to now (the meter's sampler calls it every sample_period_s)."""
        with self._lock:
            if self._live():
                self._advance()

    def energy_j(self) -> float:
        """Cumulative energy since ``start`` in joules."""
        with self._lock:
            if self._live():
                self._advance()
            return self._energy_so_far_j()

    def pop_peak_power_w(self) -> float:
        """Highest power since the previous call, in watts (0.0 when none was seen)."""
        with self._lock:
            peak, self._peak_w = self._peak_w, 0.0
            return peak


@dataclass(frozen=True, slots=True)
class ComponentEnergy:
    """Energy of one component over one window.

    Attributes:
        component: ``gpu``, ``cpu`` or ``ram``.
        energy_kwh: energy attributed to the window (after the attribution share).
        method: how it was obtained, e.g. ``nvml-energy-counter`` or ``ram-w-per-gb-estimate``.
        measured: True for hardware counters or measured power, False for estimates.
        avg_power_w: ``energy / duration`` in watts.
        peak_power_w: highest power seen between two reads in the window, in watts.
        devices: device identifiers (GPU UUIDs, ``package-0`` …).
        share: fraction of the devices' energy charged to the window (1.0 in ``device`` mode).
    """

    component: Component
    energy_kwh: float
    method: str
    measured: bool
    avg_power_w: float
    peak_power_w: float
    devices: tuple[str, ...] = ()
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class WindowResult:
    """What a window measured; cumulative from its opening to the read.

    Attributes:
        start_s: window opening, epoch seconds.
        end_s: time of this read, epoch seconds.
        components: per component figures (only components that have a source).
        attribution: ``device`` or ``process``.
    """

    start_s: float
    end_s: float
    components: dict[Component, ComponentEnergy] = field(default_factory=dict)
    attribution: Attribution = "device"

    @property
    def duration_s(self) -> float:
        """Window length in seconds."""
        return max(0.0, self.end_s - self.start_s)

    @property
    def energy_kwh(self) -> float:
        """IT energy: the sum over components, in kWh."""
        return sum(c.energy_kwh for c in self.components.values())

    @property
    def avg_power_w(self) -> float:
        """Average IT power over the window in watts."""
        d = self.duration_s
        return self.energy_kwh * J_PER_KWH / d if d > 0 else 0.0

    @property
    def peak_power_w(self) -> float:
        """Sum of the components' peak powers (an upper bound of the true peak) in watts."""
        return sum(c.peak_power_w for c in self.components.values())

    def energy_of(self, component: Component) -> float:
        """Energy of one component in kWh (0.0 when the component has no source)."""
        c = self.components.get(component)
        return c.energy_kwh if c else 0.0

    @property
    def methods(self) -> str:
        """``gpu=…;cpu=…;ram=…`` as recorded in the ``carbon.methods`` tag."""
        return ";".join(f"{k}={c.method}" for k, c in sorted(self.components.items()))
