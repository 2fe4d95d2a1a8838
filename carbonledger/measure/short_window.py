"""Windows shorter than an energy counter's update period.

GPU energy counters do not count continuously: NVML's ``nvmlDeviceGetTotalEnergyConsumption``
moves in steps about every 100 ms (Zeus measures the same), AMD's accumulator at the SMU's
rate. A window shorter than one step can read 0 J, or a whole step it did not span. At
``start`` a source measures its counter's update period from the first change of the counter
(the time from the first change to the next one, at most ``PROBE_BUDGET_S``); a window shorter
than that period is charged ``last power reading x duration`` (as Zeus's
``approx_instant_energy``) and marked ``short-window-power-interpolation``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

PROBE_BUDGET_S = 0.3
"""Longest the start-up probe waits for two counter changes (NVML's period is ~0.1 s)."""
PROBE_POLL_S = 0.002
"""Polling step of the probe."""


def probe_update_period_s(
    read: Callable[[], float],
    *,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """Seconds between two changes of a counter, polled for at most ``budget_s``.

    The first change marks a step boundary (the phase of the first read is unknown); the
    period is the time from it to the next change. ``None`` when the counter did not change
    twice within the budget (an update period longer than the budget, or a stuck counter).

    Args:
        read: returns the counter's current raw value.
        budget_s: polling budget (default ``PROBE_BUDGET_S``; 0 skips the probe).
        clock: monotonic clock in seconds.
        sleep: sleeps for the given seconds.
    """
    budget = PROBE_BUDGET_S if budget_s is None else budget_s
    if budget <= 0:
        return None
    t0 = clock()
    last = read()
    first_change: float | None = None
    while clock() - t0 < budget:
        sleep(PROBE_POLL_S)
        value = read()
        if value == last:
            continue
        now, last = clock(), value
        if first_change is None:
            first_change = now
        else:
            return now - first_change
    return None


def assumed_period_s(measured_s: float | None, budget_s: float | None = None) -> float | None:
    """The period to use: the measured one, else the probe budget (a safe upper guess).

    ``None`` (never interpolate) only when the probe was skipped (budget 0).
    """
    if measured_s is not None:
        return measured_s
    budget = PROBE_BUDGET_S if budget_s is None else budget_s
    return budget if budget > 0 else None


def interpolate_j(
    parts: Iterable[tuple[float, float, float]], duration_s: float
) -> tuple[float, float, float]:
    """``(energy_j, remainder_j, device_j)`` of a short window from fresh power readings.

    Args:
        parts: per device ``(power_w, own_fraction, remainder_fraction)``, the fractions being
            those the device was split by over its last interval.
        duration_s: the window's length.
    """
    own_j = remainder_j = device_j = 0.0
    for power_w, own_fraction, remainder_fraction in parts:
        energy_j = power_w * duration_s
        own_j += energy_j * own_fraction
        remainder_j += energy_j * remainder_fraction
        device_j += energy_j
    return own_j, remainder_j, device_j
