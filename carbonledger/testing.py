"""Test helpers for code that uses carbonledger: a fake clock, fake sources and a replay meter.

Drive a ``Meter`` without hardware, deterministically::

    clock = FakeClock()
    meter = fake_meter({"gpu": 300.0, "cpu": [(0, 50.0), (10, 80.0)]}, clock=clock)
    with meter.open_window() as window:
        clock.advance(20)
    window.close().energy_kwh  # (300 * 20 + 50 * 10 + 80 * 10) / J_PER_KWH

Power is given per component either as a constant in watts or as steps
``[(from_elapsed_s, power_w), ...]`` (piecewise constant, exact integration).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Literal

from carbonledger.measure.base import Component
from carbonledger.measure.meter import Meter

PowerSpec = float | Sequence[tuple[float, float]]


class FakeClock:
    """A clock that moves only when told; callable like ``time.time``."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self._now = start_s
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """The current fake time in epoch seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds


class FakeSource:
    """An ``EnergySource`` replaying a power trace against a clock.

    Args:
        component: ``gpu``, ``cpu`` or ``ram``.
        power_w: constant watts, or steps ``[(from_elapsed_s, power_w), ...]`` from ``start``.
        clock: the clock the trace runs on (share it with the ``Meter``).
        method: method name to report (``fake`` by default: counted as an estimate).
        devices: device labels to report.
    """

    def __init__(
        self,
        component: Component,
        power_w: PowerSpec,
        *,
        clock: FakeClock,
        method: str = "fake",
        devices: tuple[str, ...] = ("fake-0",),
    ) -> None:
        steps = [(0.0, float(power_w))] if isinstance(power_w, int | float) else list(power_w)
        if (
            not steps
            or steps[0][0] != 0
            or any(b[0] <= a[0] for a, b in zip(steps[:-1], steps[1:], strict=True))
        ):
            raise ValueError("power steps must start at 0 s and increase")
        self.component: Component = component
        self.method = method
        self.devices = devices
        self.sample_period_s: float | None = None
        self._steps = [(float(t), float(p)) for t, p in steps]
        self._clock = clock
        self._t0: float | None = None
        self._closed_at: float | None = None
        self.started = False
        self.closed = False

    def start(self) -> None:
        """Start the trace at the clock's current time; idempotent."""
        if self._t0 is None:
            self._t0 = self._clock()
            self.started = True

    def energy_at(self, elapsed_s: float) -> float:
        """Energy of the trace from 0 to ``elapsed_s`` seconds, in joules."""
        total = 0.0
        for i, (t, p) in enumerate(self._steps):
            end = self._steps[i + 1][0] if i + 1 < len(self._steps) else float("inf")
            if elapsed_s <= t:
                break
            total += p * (min(elapsed_s, end) - t)
        return total

    def energy_j(self) -> float:
        """Cumulative energy since ``start`` in joules."""
        if self._t0 is None:
            return 0.0
        now = self._closed_at if self._closed_at is not None else self._clock()
        return self.energy_at(now - self._t0)

    def close(self) -> None:
        """Freeze the trace; idempotent."""
        if not self.closed:
            self._closed_at = self._clock()
            self.closed = True


def fake_meter(
    powers: Mapping[Component, PowerSpec],
    *,
    clock: FakeClock | None = None,
    attribution: Literal["device"] = "device",
    method: str = "fake",
) -> Meter:
    """A ``Meter`` over ``FakeSource`` s, one per component, sharing ``clock``."""
    clock = clock or FakeClock()
    sources = [FakeSource(c, p, clock=clock, method=method) for c, p in powers.items()]
    return Meter(sources, attribution=attribution, clock=clock)


__all__ = ["FakeClock", "FakeSource", "fake_meter"]
