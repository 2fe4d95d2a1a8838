"""Charging one serving window's device energy to the model versions a process hosts.

The energy ``E`` the process's devices drew over a window is split into **idle** and
**active** energy, then charged:

* idle energy goes to the versions by **time share** (how long each was loaded in the window),
  so a version that serves nothing still pays for the devices it holds;
* active energy goes to the versions by **request share**.

Idle energy is, in order: everything when no request was served; ``idle_power_w x duration``
(capped at ``E``) when an idle baseline is known (configured, or learned from earlier windows
without requests); else the energy of the time no request was running,
``E x (1 - busy_s / duration)`` (busy time = summed request latency, capped at the window).
Per-request figures: *active* = active energy / requests, *fully loaded* = all energy /
requests (BLOOM's deployment drew ~80% of its energy independent of load, so the two differ a
lot). Nothing is lost or counted twice: the charges add up to ``E`` per component.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from carbonledger.contract import WH_PER_KWH, energy_kwh_at

IDLE_NO_REQUESTS = "no-requests"
IDLE_BASELINE = "idle-baseline"
IDLE_BUSY_TIME = "busy-time"
PERCENTILES = (50.0, 95.0, 99.0)


@dataclass(frozen=True, slots=True)
class VersionActivity:
    """What one hosted version did in a window.

    Attributes:
        key: identifies the version (e.g. ``(model_name, version)``).
        requests: predict calls that ended in the window.
        busy_s: summed wall time of those calls.
        hosted_s: how long the version was loaded during the window.
    """

    key: Hashable
    requests: int
    busy_s: float
    hosted_s: float


@dataclass(frozen=True, slots=True)
class Charge:
    """The energy charged to one version for one window (kWh)."""

    key: Hashable
    active_energy_kwh: float
    idle_energy_kwh: float
    energy_kwh: dict[str, float]

    @property
    def total_kwh(self) -> float:
        """Active plus idle."""
        return self.active_energy_kwh + self.idle_energy_kwh


@dataclass(frozen=True, slots=True)
class Split:
    """The charges of a window and how its idle energy was determined."""

    charges: list[Charge]
    idle_energy_kwh: float
    active_energy_kwh: float
    idle_method: str


def split_window(
    energy_kwh: Mapping[str, float],
    duration_s: float,
    activity: Sequence[VersionActivity],
    *,
    idle_power_w: float | None = None,
) -> Split:
    """Charge a window's energy (per component, kWh) to the versions of ``activity``."""
    total = sum(energy_kwh.values())
    requests = sum(a.requests for a in activity)
    hosted = sum(a.hosted_s for a in activity)
    if requests == 0:
        idle, method = total, IDLE_NO_REQUESTS
    elif idle_power_w is not None:
        idle, method = min(total, energy_kwh_at(idle_power_w, duration_s)), IDLE_BASELINE
    else:
        busy = min(duration_s, sum(a.busy_s for a in activity))
        idle = total * (1.0 - busy / duration_s) if duration_s > 0 else 0.0
        method = IDLE_BUSY_TIME
    active = total - idle
    charges = []
    for a in activity:
        if hosted > 0:
            idle_v = idle * (a.hosted_s / hosted)
        else:  # no hosting time known: share the idle energy equally
            idle_v = idle / len(activity)
        active_v = active * (a.requests / requests) if requests else 0.0
        share = (idle_v + active_v) / total if total > 0 else 0.0
        charges.append(
            Charge(
                key=a.key,
                active_energy_kwh=active_v,
                idle_energy_kwh=idle_v,
                energy_kwh={c: v * share for c, v in energy_kwh.items()},
            )
        )
    return Split(charges, idle if activity else 0.0, active if activity else 0.0, method)


def percentiles_ms(latencies_s: Sequence[float]) -> dict[float, float] | None:
    """p50/p95/p99 in milliseconds (nearest rank), ``None`` without samples."""
    if not latencies_s:
        return None
    ordered = sorted(latencies_s)
    n = len(ordered)
    return {p: ordered[max(0, math.ceil(p / 100.0 * n) - 1)] * 1000.0 for p in PERCENTILES}


def per_request(energy_kwh: float, requests: int) -> float | None:
    """Watt-hours per request (``None`` without requests)."""
    return energy_kwh * WH_PER_KWH / requests if requests else None
