"""Types shared by every energy source and the ``Meter``.

A source exposes a monotonic cumulative energy counter in joules (``energy_j``), whatever
its native method; the ``Meter`` turns counter differences into windows. Units are in the
names: joules (``_j``), watts (``_w``), kilowatt-hours (``_kwh``), seconds (``_s``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from carbonledger.contract import (
    J_PER_KWH,
    MEASURED_METHODS,
    METHOD_AMDSMI_COUNTER,
    METHOD_AMDSMI_EVEN_SHARE,
    METHOD_AMDSMI_POWER,
    METHOD_CPU_ESTIMATE,
    METHOD_NVML_COUNTER,
    METHOD_NVML_EVEN_SHARE,
    METHOD_NVML_MIG_SHARE,
    METHOD_NVML_POWER,
    METHOD_NVML_PROCESS_SHARE,
    METHOD_RAM_ESTIMATE,
    METHOD_RAM_RAPL,
    METHOD_RAPL,
    METHOD_SHORT_WINDOW,
    average_power_w,
    kwh_from_j,
)

Component = Literal["gpu", "cpu", "ram"]
COMPONENTS: tuple[Component, ...] = ("gpu", "cpu", "ram")
Attribution = Literal["device", "process"]

j_to_kwh = kwh_from_j
"""Convert joules to kilowatt-hours (the contract's ``kwh_from_j``)."""

# Method names recorded with every figure live in carbonledger.contract (they appear in MLflow
# tags and the ledger); they are re-exported here for the sources.
__all__ = [
    "COMPONENTS",
    "J_PER_KWH",
    "MEASURED_METHODS",
    "METHOD_AMDSMI_COUNTER",
    "METHOD_AMDSMI_EVEN_SHARE",
    "METHOD_AMDSMI_POWER",
    "METHOD_CPU_ESTIMATE",
    "METHOD_NVML_COUNTER",
    "METHOD_NVML_EVEN_SHARE",
    "METHOD_NVML_MIG_SHARE",
    "METHOD_NVML_POWER",
    "METHOD_NVML_PROCESS_SHARE",
    "METHOD_RAM_ESTIMATE",
    "METHOD_RAM_RAPL",
    "METHOD_RAPL",
    "METHOD_SHORT_WINDOW",
    "Attribution",
    "Component",
    "ComponentEnergy",
    "EnergySource",
    "LockedSource",
    "SharedDeviceSource",
    "SourceReading",
    "WindowResult",
    "j_to_kwh",
]


@dataclass(frozen=True, slots=True)
class SourceReading:
    """Cumulative figures of a source that splits devices, since its ``start`` (joules).

    Attributes:
        energy_j: energy charged to this process (what ``energy_j()`` returns).
        remainder_j: this process's part of the devices' remainder: energy no metered process
            was charged (idle time, unmetered processes), reported beside, never inside.
        device_j: the devices' own energy (counter deltas), whoever used it.
        method_device_j: device energy handled by each method (``nvml-energy-counter``,
            ``nvml-process-share`` …): a window's methods are those whose figure grew.
    """

    energy_j: float
    remainder_j: float = 0.0
    device_j: float = 0.0
    method_device_j: Mapping[str, float] = field(default_factory=dict)


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
class SharedDeviceSource(EnergySource, Protocol):
    """Optional extras of a GPU source whose devices other processes may share.

    ``reading()`` gives the cumulative split (``SourceReading``); ``short_window_j(d)`` gives
    ``(energy_j, remainder_j, device_j)`` for a window of ``d`` seconds shorter than the energy
    counter's update period (``None`` when it is not), from a fresh power reading; ``set_metering``
    tells the source whether a window is open (so other processes know it is metered);
    ``notes`` are human notes on fallbacks chosen at start.
    """

    notes: list[str]

    def reading(self) -> SourceReading:
        """Cumulative figures since ``start``."""

    def short_window_j(self, duration_s: float) -> tuple[float, float, float] | None:
        """Interpolated ``(energy_j, remainder_j, device_j)`` of a short window, or ``None``."""

    def set_metering(self, active: bool) -> None:
        """Announce (or withdraw) that this process meters its devices."""


class LockedSource:
    """The ``sample``/``energy_j``/``reading``/``pop_peak_power_w`` plumbing of the sources.

    A subclass sets ``_lock`` and ``_peak_w`` and implements ``_live()`` (started and not
    closed), ``_advance()`` (read or integrate up to now; called with the lock held) and
    ``_energy_so_far_j()`` (and ``_reading_so_far()`` when it splits devices). Both the
    meter's sampler thread (``sample``) and window reads (``energy_j``, ``reading``) advance
    the source, so a read is always up to date.
    """

    _lock: threading.Lock
    _peak_w: float

    def _live(self) -> bool:
        raise NotImplementedError

    def _advance(self) -> None:
        raise NotImplementedError

    def _energy_so_far_j(self) -> float:
        raise NotImplementedError

    def _reading_so_far(self) -> SourceReading:
        energy_j = self._energy_so_far_j()
        return SourceReading(energy_j, 0.0, energy_j)

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

    def reading(self) -> SourceReading:
        """Cumulative figures since ``start`` (a source that splits devices fills them all)."""
        with self._lock:
            if self._live():
                self._advance()
            return self._reading_so_far()

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
        share: fraction of the devices' energy charged to the window (1.0 in ``device`` mode
            on devices nobody else meters).
        remainder_kwh: this window's part of its shared devices' remainder (energy no metered
            process was charged: idle time, unmetered processes); never inside ``energy_kwh``.
    """

    component: Component
    energy_kwh: float
    method: str
    measured: bool
    avg_power_w: float
    peak_power_w: float
    devices: tuple[str, ...] = ()
    share: float = 1.0
    remainder_kwh: float = 0.0


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
        return average_power_w(self.energy_kwh, self.duration_s)

    @property
    def peak_power_w(self) -> float:
        """Sum of the components' peak powers (an upper bound of the true peak) in watts."""
        return sum(c.peak_power_w for c in self.components.values())

    def energy_of(self, component: Component) -> float:
        """Energy of one component in kWh (0.0 when the component has no source)."""
        c = self.components.get(component)
        return c.energy_kwh if c else 0.0

    def remainder_of(self, component: Component) -> float:
        """This window's part of a component's device remainder in kWh (0.0 when none)."""
        c = self.components.get(component)
        return c.remainder_kwh if c else 0.0

    @property
    def methods(self) -> str:
        """``gpu=…;cpu=…;ram=…`` as recorded in the ``carbon.methods`` tag."""
        return ";".join(f"{k}={c.method}" for k, c in sorted(self.components.items()))
