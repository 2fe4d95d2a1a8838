"""The ``Meter``: energy windows over several sources; windows may overlap and nest.

Every read or close of a window is an *observation*: each source's cumulative ``energy_j`` is
read once, at that instant, and a window's energy is the difference between its opening
observation and the current one. Peak power is the highest of (a) the average power between
two consecutive observations at least ``MIN_PEAK_SPAN_S`` apart and (b) the highest sample a
sampled source saw in between; it is pushed to every window open at that moment. A background
sampler runs only for sources that need one (power integration, estimates, RAPL wrap watch,
``process`` attribution, GPUs that may be shared).

A GPU source that splits shared devices gives a ``SourceReading`` (charged energy, its part of
the devices' remainder, device energy, device energy per method): a window carries the
differences, its methods are those whose energy grew, and its GPU ``remainder_kwh`` stands
beside (never inside) its energy. A window shorter than a source's counter update period is
charged the source's ``short_window_j`` (power x duration) and marked
``short-window-power-interpolation``. While any window is open the meter tells its sources
(``set_metering``), so that other processes sharing a GPU know this one is metered.
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
    METHOD_SHORT_WINDOW,
    Attribution,
    Component,
    ComponentEnergy,
    EnergySource,
    SourceReading,
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
    readings: tuple[SourceReading, ...]
    share: ShareSnapshot | None

    @property
    def energies_j(self) -> tuple[float, ...]:
        return tuple(r.energy_j for r in self.readings)


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
        self._last: dict[int, SourceReading] = {}  # last good reading of each source (by index)
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
        """Human notes on fallbacks chosen while detecting and starting the sources."""
        found = list(self._notes)
        for src in self.sources:
            found += [n for n in getattr(src, "notes", ()) if n not in found]
        return tuple(found)

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

                found, self._notes = detect_sources(settings, attribution=self.attribution)
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
            if len(self._windows) == 1:
                self._announce(True)
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

    def _announce(self, metering: bool) -> None:
        # Caller holds the lock. Tells sharing-aware sources whether a window is open.
        for src in self._sources:
            announce = getattr(src, "set_metering", None)
            if announce is None:
                continue
            try:
                announce(metering)
            except Exception:  # noqa: BLE001 - announcing is best effort, never fatal
                logger.debug("set_metering failed on %s", src.component, exc_info=True)

    def _observe(self) -> _Observation:
        # Caller holds the lock.
        t, before = self._clock(), self._elapsed()
        readings = tuple(self._reading(i, src) for i, src in enumerate(self._sources))
        energies = tuple(r.energy_j for r in readings)
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
        return _Observation(t, elapsed, readings, share)

    def _reading(self, index: int, src: EnergySource) -> SourceReading:
        # A source that fails mid-run (GPU fell off the bus, powercap files gone) keeps the
        # energy it measured so far; the other sources and the run go on.
        try:
            read = getattr(src, "reading", None)
            if read is not None:
                value = read()
            else:
                energy_j = float(src.energy_j())
                value = SourceReading(energy_j, 0.0, energy_j)
        except MeasurementError as exc:
            if index not in self._failed:
                self._failed.add(index)
                note = f"{src.component} source failed mid-run ({exc}): energy frozen"
                self._notes.append(note)
                logger.warning("carbonledger: %s", note)
            return self._last.get(index, SourceReading(0.0))
        self._last[index] = value
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
                if not self._windows:
                    self._announce(False)

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
            energy_j = remainder_j = device_j = 0.0
            methods: list[str] = []
            for i in idx:
                e, r, d, used = self._source_delta(i, opened, now, duration_s)
                energy_j, remainder_j, device_j = energy_j + e, remainder_j + r, device_j + d
                methods += [m for m in used if m not in methods]
            share = shares[comp] * (energy_j / device_j if device_j > 0 else 1.0)
            energy_j *= shares[comp]
            avg_w = energy_j / duration_s if duration_s > 0 else 0.0
            peak_w = sum(window._peaks_w[i] for i in idx) * shares[comp]
            components[comp] = ComponentEnergy(
                component=comp,
                energy_kwh=j_to_kwh(energy_j),
                method="+".join(methods),
                measured=all(m in MEASURED_METHODS for m in methods),
                avg_power_w=avg_w,
                peak_power_w=max(avg_w, peak_w),
                devices=tuple(d for i in idx for d in self._sources[i].devices),
                share=share,
                remainder_kwh=j_to_kwh(remainder_j),
            )
        return WindowResult(
            start_s=opened.t_s, end_s=now.t_s, components=components, attribution=self.attribution
        )

    def _source_delta(
        self, index: int, opened: _Observation, now: _Observation, duration_s: float
    ) -> tuple[float, float, float, list[str]]:
        """``(energy_j, remainder_j, device_j, methods)`` of one source over a window."""
        src, a, b = self._sources[index], opened.readings[index], now.readings[index]
        short = getattr(src, "short_window_j", None)
        interpolated = short(duration_s) if short is not None and duration_s > 0 else None
        if interpolated is not None:
            return (*interpolated, [METHOD_SHORT_WINDOW])
        grown = [m for m, v in b.method_device_j.items() if v > a.method_device_j.get(m, 0.0)]
        return (
            max(0.0, b.energy_j - a.energy_j),
            max(0.0, b.remainder_j - a.remainder_j),
            max(0.0, b.device_j - a.device_j),
            grown or [src.method],
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


def forget_shared_meter() -> None:
    """Drop the process-wide meter without closing it (a forked child: its threads are gone).

    The child's next ``shared_meter()`` builds its own; the parent's meter stays the parent's.
    """
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()
