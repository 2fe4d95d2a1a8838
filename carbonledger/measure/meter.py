"""The ``Meter``: energy windows over several sources; windows may overlap and nest.

Every read or close of a window is an *observation*: each source's cumulative ``energy_j`` is
read once, at that instant, and a window's energy is the difference between its opening
observation and the current one. Peak power is the highest of (a) the average power between
two consecutive observations at least ``MIN_PEAK_SPAN_S`` apart and (b) the highest sample a
sampled source saw in between; it is pushed to every window open at that moment. A background
sampler runs only for sources that need one (power integration, estimates, RAPL wrap watch,
``process`` attribution).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from carbonledger.errors import MeasurementError
from carbonledger.measure.attribution import ProcessShareTracker, ShareSnapshot, share_between
from carbonledger.measure.base import (
    MEASURED_METHODS,
    Attribution,
    Component,
    ComponentEnergy,
    EnergySource,
    WindowResult,
    j_to_kwh,
)
from carbonledger.measure.hardware import HardwareInfo, describe_hardware
from carbonledger.measure.sampler import Sampler
from carbonledger.settings import Settings, get_settings

logger = logging.getLogger(__name__)

MIN_PEAK_SPAN_S = 0.1


@dataclass(frozen=True, slots=True)
class _Observation:
    t_s: float
    elapsed_s: float  # on the sources' clock (monotonic), for power
    energies_j: tuple[float, ...]
    share: ShareSnapshot | None


class Window:
    """An interval of measurement; ``read`` gives the cumulative result, ``close`` the final one."""

    def __init__(self, meter: Meter, opened: _Observation) -> None:
        self._meter = meter
        self._opened = opened
        self._peaks_w = [0.0] * len(opened.energies_j)
        self._result: WindowResult | None = None

    @property
    def closed(self) -> bool:
        """True once ``close`` has run (or the meter was closed)."""
        return self._result is not None

    def read(self) -> WindowResult:
        """Energy since the window opened; the window stays open."""
        if self._result is not None:
            return self._result
        return self._meter._read(self)

    def close(self) -> WindowResult:
        """Final result; idempotent (later calls return the same result)."""
        if self._result is None:
            self._meter._close_window(self)
        assert self._result is not None
        return self._result

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Meter:
    """Measures energy windows over the GPU, CPU and RAM sources of this machine.

    Args:
        sources: the sources to read; ``None`` detects them at ``start`` from the settings.
        settings: settings to use (default: ``get_settings()``).
        attribution: ``device`` or ``process`` (default: the ``attribution`` setting).
        clock: wall clock for window start/end times, epoch seconds.
    """

    def __init__(
        self,
        sources: Sequence[EnergySource] | None = None,
        *,
        settings: Settings | None = None,
        attribution: Attribution | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._given = tuple(sources) if sources is not None else None
        self._settings = settings
        self._attribution = attribution
        self._clock = clock
        # Sources integrate on time.monotonic; powers use it too unless a fake clock drives all.
        self._elapsed = time.monotonic if clock is time.time else clock
        self._lock = threading.RLock()
        self._sources: tuple[EnergySource, ...] = ()
        self._notes: list[str] = []
        self._sampler = Sampler()
        self._tracker: ProcessShareTracker | None = None
        self._windows: weakref.WeakSet[Window] = weakref.WeakSet()
        self._span: tuple[float, tuple[float, ...]] | None = None
        self._hardware: HardwareInfo | None = None
        self._started = False
        self._last_j: dict[int, float] = {}  # last good reading of each source (by index)
        self._failed: set[int] = set()
        self._closed = False

    @property
    def attribution(self) -> Attribution:
        """``device`` or ``process``."""
        if self._attribution is None:
            self._attribution = (self._settings or get_settings()).attribution
        return self._attribution

    @property
    def sources(self) -> tuple[EnergySource, ...]:
        """The sources in use (empty before ``start`` when they are detected)."""
        return self._sources if self._started else (self._given or ())

    @property
    def notes(self) -> tuple[str, ...]:
        """Human notes on fallbacks chosen while detecting the sources."""
        return tuple(self._notes)

    @property
    def sampler_cpu_time_s(self) -> float:
        """CPU time used so far by the background sampler thread (0 when there is none)."""
        return self._sampler.cpu_time_s

    @property
    def sampling(self) -> bool:
        """True while a background sampler thread runs."""
        return self._sampler.running

    def hardware(self) -> HardwareInfo:
        """Metadata of the devices (read once per meter)."""
        if self._hardware is None:
            self._hardware = describe_hardware(self._settings)
        return self._hardware

    def start(self) -> None:
        """Start the sources and, only if one needs it, the sampler thread; idempotent.

        Raises:
            MeasurementError: the meter was closed, or a source cannot start.
        """
        with self._lock:
            if self._closed:
                raise MeasurementError("this Meter is closed: create a new Meter")
            if self._started:
                return
            settings = self._settings or get_settings()
            if self._given is None:
                from carbonledger.measure.detect import detect_sources

                found, self._notes = detect_sources(settings)
                self._sources = tuple(found)
            else:
                self._sources = self._given
            started: list[EnergySource] = []
            try:
                for src in self._sources:
                    src.start()
                    started.append(src)
                    period = getattr(src, "sample_period_s", None)
                    if period and hasattr(src, "sample"):
                        self._sampler.add(period, src.sample)
                if self.attribution == "process":
                    self._tracker = ProcessShareTracker(period_s=settings.estimate_interval_s)
                    self._tracker.start()
                    self._sampler.add(self._tracker.sample_period_s, self._tracker.sample)
            except BaseException:
                for src in started:
                    src.close()
                raise
            self._sampler.start()
            self._started = True

    def open_window(self) -> Window:
        """Open a window now (starting the meter if needed)."""
        self.start()
        with self._lock:
            if self._closed:
                raise MeasurementError("this Meter is closed: create a new Meter")
            window = Window(self, self._observe())
            self._windows.add(window)
            return window

    def close(self) -> None:
        """Close the open windows, stop the sampler and the sources; idempotent."""
        with self._lock:
            if self._closed:
                return
            if self._started and len(self._windows):
                obs = self._observe()
                for window in list(self._windows):
                    window._result = self._result(window, obs)
                self._windows.clear()
            self._closed = True
        self._sampler.stop()
        for src in self._sources:
            src.close()

    def __enter__(self) -> Meter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals (called with windows) ----------------------------------------------------

    def _observe(self) -> _Observation:
        # Caller holds the lock.
        t, before = self._clock(), self._elapsed()
        energies = tuple(self._energy_j(i, src) for i, src in enumerate(self._sources))
        elapsed = (before + self._elapsed()) / 2.0  # the sources were read in between
        peaks = [_pop_peak(src) for src in self._sources]
        if self._span is None or elapsed < self._span[0]:
            self._span = (elapsed, energies)
        elif elapsed - self._span[0] >= MIN_PEAK_SPAN_S:
            dt = elapsed - self._span[0]
            peaks = [
                max(p, (e - e0) / dt)
                for p, e, e0 in zip(peaks, energies, self._span[1], strict=True)
            ]
            self._span = (elapsed, energies)
        for window in self._windows:
            window._peaks_w = [max(a, b) for a, b in zip(window._peaks_w, peaks, strict=True)]
        share = self._tracker.snapshot() if self._tracker is not None else None
        return _Observation(t, elapsed, energies, share)

    def _energy_j(self, index: int, src: EnergySource) -> float:
        # A source that fails mid-run (GPU fell off the bus, powercap files gone) keeps the
        # energy it measured so far; the other sources and the run go on.
        try:
            value = float(src.energy_j())
        except MeasurementError as exc:
            if index not in self._failed:
                self._failed.add(index)
                note = f"{src.component} source failed mid-run ({exc}): energy frozen"
                self._notes.append(note)
                logger.warning("carbonledger: %s", note)
            return self._last_j.get(index, 0.0)
        self._last_j[index] = value
        return value

    def _read(self, window: Window) -> WindowResult:
        with self._lock:
            if window._result is not None:
                return window._result
            return self._result(window, self._observe())

    def _close_window(self, window: Window) -> None:
        with self._lock:
            if window._result is None:
                window._result = self._result(window, self._observe())
                self._windows.discard(window)

    def _result(self, window: Window, now: _Observation) -> WindowResult:
        opened = window._opened
        duration_s = max(0.0, now.elapsed_s - opened.elapsed_s)
        shares: dict[Component, float] = {"gpu": 1.0, "cpu": 1.0, "ram": 1.0}
        if opened.share is not None and now.share is not None:
            shares["cpu"], shares["ram"] = share_between(opened.share, now.share)
        grouped: dict[Component, list[int]] = {}
        for i, src in enumerate(self._sources):
            grouped.setdefault(src.component, []).append(i)
        components: dict[Component, ComponentEnergy] = {}
        for comp, idx in grouped.items():
            share = shares[comp]
            energy_j = sum(max(0.0, now.energies_j[i] - opened.energies_j[i]) for i in idx)
            avg_w = energy_j / duration_s if duration_s > 0 else 0.0
            peak_w = max(avg_w, sum(window._peaks_w[i] for i in idx))
            methods = list(dict.fromkeys(self._sources[i].method for i in idx))
            components[comp] = ComponentEnergy(
                component=comp,
                energy_kwh=j_to_kwh(energy_j * share),
                method="+".join(methods),
                measured=all(m in MEASURED_METHODS for m in methods),
                avg_power_w=avg_w * share,
                peak_power_w=peak_w * share,
                devices=tuple(d for i in idx for d in self._sources[i].devices),
                share=share,
            )
        return WindowResult(
            start_s=opened.t_s, end_s=now.t_s, components=components, attribution=self.attribution
        )


def _pop_peak(src: Any) -> float:
    pop = getattr(src, "pop_peak_power_w", None)
    return float(pop()) if pop is not None else 0.0


_shared_lock = threading.Lock()
_shared: Meter | None = None


def shared_meter() -> Meter:
    """The process-wide meter (created lazily, thread-safe; a closed one is replaced)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = Meter()
        return _shared


def reset_shared_meter() -> None:
    """Close and forget the process-wide meter (for tests and forked workers)."""
    global _shared
    with _shared_lock:
        meter, _shared = _shared, None
    if meter is not None:
        meter.close()
