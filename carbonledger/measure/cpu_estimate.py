"""CPU energy estimate from rated power (TDP) and utilisation, where RAPL is unreadable.

Model (linear server power model of Fan, Weber and Barroso, ISCA 2007,
``P(u) = P_idle + (P_busy - P_idle) * u``, with ``P_busy = TDP`` and an idle floor of 10 % of
TDP, the floor CodeCarbon applies to its load-based CPU estimate)::

    P(u) = TDP * (IDLE_FRACTION + (1 - IDLE_FRACTION) * u)

where ``u`` in [0, 1] is the whole machine's CPU utilisation over the sampling interval, from
``psutil.cpu_times()`` (busy = user + nice + system + irq + softirq; idle = idle + iowait;
steal time is left out). TDP comes from the shipped table ``data/cpu_tdp.csv`` (see its
header for source and licence) or the ``CARBONLEDGER_CPU_TDP_W`` override; an unknown CPU
gets ``W_PER_THREAD`` watts per logical CPU.
"""

from __future__ import annotations

import csv
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from carbonledger.measure.base import METHOD_CPU_ESTIMATE, Component, LockedSource

IDLE_FRACTION = 0.10
W_PER_THREAD = 4.0
MIN_PEAK_SPAN_S = 0.1

_NOISE = re.compile(
    r"\((r|tm)\)|®|™|\bcpu\b|\bprocessor\b|@.*$|\b\d+-core\b|\bwith\b.*$|,", re.IGNORECASE
)


def _tokens(name: str) -> tuple[str, ...]:
    return tuple(_NOISE.sub(" ", name).lower().split())


@dataclass(frozen=True, slots=True)
class TdpMatch:
    """A CPU model's rated power and where it came from (``table``, ``setting``, ``per-thread``)."""

    tdp_w: float
    source: str
    matched_name: str | None = None


@lru_cache(maxsize=1)
def load_tdp_table() -> dict[tuple[str, ...], tuple[str, float]]:
    """The shipped TDP table, keyed by normalised name tokens (read once, lazily)."""
    text = resources.files("carbonledger.measure").joinpath("data/cpu_tdp.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {_tokens(r["name"]): (r["name"], float(r["tdp_w"])) for r in rows}


@lru_cache(maxsize=1)
def _table_rows() -> tuple[tuple[str, str, float], ...]:
    """``(lowercased name, name, TDP)`` rows, without tokenising them (fast to load)."""
    text = resources.files("carbonledger.measure").joinpath("data/cpu_tdp.csv").read_text()
    rows = []
    for line in text.splitlines()[1:]:
        if line and not line.startswith("#") and line != "name,tdp_w":
            name, _, tdp = line.rpartition(",")
            rows.append((name.lower(), name, float(tdp)))
    return tuple(rows)


def lookup_tdp(cpu_model: str | None) -> tuple[str, float] | None:
    """``(table name, TDP W)`` for a CPU model string, or ``None`` when it is not in the table.

    A table entry matches when its tokens appear, in order and contiguous, in the model string
    (after dropping ``(R)``, ``CPU``, ``@ 2.30GHz`` …) and include a model number; the longest
    match wins, so ``AMD EPYC 7763 64-Core Processor`` is ``AMD EPYC 7763`` and a bare
    ``AMD EPYC`` matches nothing.
    """
    toks = _tokens(cpu_model or "")
    numbers = [t for t in toks if any(ch.isdigit() for ch in t)]
    if not numbers:
        return None
    best: tuple[int, str, float] | None = None
    for low, name, tdp in _table_rows():
        if not any(n in low for n in numbers):  # cheap filter before tokenising
            continue
        key = _tokens(name)
        n = len(key)
        if any(any(ch.isdigit() for ch in t) for t in key) and (best is None or n > best[0]):
            if any(toks[i : i + n] == key for i in range(len(toks) - n + 1)):
                best = (n, name, tdp)
    return (best[1], best[2]) if best else None


def resolve_tdp(cpu_model: str | None, logical_cpus: int, override_w: float | None) -> TdpMatch:
    """Rated power to use: the setting, else the table, else ``W_PER_THREAD`` per logical CPU."""
    if override_w is not None:
        return TdpMatch(override_w, "setting")
    found = lookup_tdp(cpu_model)
    if found:
        return TdpMatch(found[1], "table", found[0])
    return TdpMatch(W_PER_THREAD * max(1, logical_cpus), "per-thread")


def cpu_power_w(tdp_w: float, utilisation: float, idle_fraction: float = IDLE_FRACTION) -> float:
    """The model: ``TDP * (idle_fraction + (1 - idle_fraction) * u)``, ``u`` clipped to [0, 1]."""
    u = min(1.0, max(0.0, utilisation))
    return tdp_w * (idle_fraction + (1.0 - idle_fraction) * u)


def busy_and_total_s(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds from a ``psutil.cpu_times()`` result (steal left out)."""
    busy = sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
    idle = times.idle + getattr(times, "iowait", 0.0)
    return busy, busy + idle


def _psutil_cpu_times() -> Any:
    import psutil

    return psutil.cpu_times()


class CpuEstimateSource(LockedSource):
    """CPU energy from the TDP model, integrated every ``sample_period_s`` and at each read."""

    component: Component = "cpu"
    method = METHOD_CPU_ESTIMATE

    def __init__(
        self,
        tdp_w: float,
        *,
        idle_fraction: float = IDLE_FRACTION,
        period_s: float = 1.0,
        cpu_times: Callable[[], Any] = _psutil_cpu_times,
        clock: Callable[[], float] = time.monotonic,
        devices: tuple[str, ...] = ("cpu",),
        tdp_source: str = "table",
    ) -> None:
        self.tdp_w = tdp_w
        self.tdp_source = tdp_source
        self.idle_fraction = idle_fraction
        self.sample_period_s: float | None = period_s
        self.devices = devices
        self._cpu_times = cpu_times
        self._clock = clock
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._t = 0.0
        self._busy_s = 0.0
        self._total_s = 0.0
        self._util = 0.0
        self._energy_j = 0.0
        self._peak_w = 0.0

    def start(self) -> None:
        """Take the utilisation baseline; idempotent."""
        with self._lock:
            if not self._started:
                self._t = self._clock()
                self._busy_s, self._total_s = busy_and_total_s(self._cpu_times())
                self._started = True

    def _advance(self) -> None:
        now = self._clock()
        busy, total = busy_and_total_s(self._cpu_times())
        if total > self._total_s:  # else no clock tick passed: keep the last utilisation
            self._util = (busy - self._busy_s) / (total - self._total_s)
            self._busy_s, self._total_s = busy, total
        power_w = cpu_power_w(self.tdp_w, self._util, self.idle_fraction)
        dt = max(0.0, now - self._t)
        self._energy_j += power_w * dt
        if dt >= MIN_PEAK_SPAN_S:
            self._peak_w = max(self._peak_w, power_w)
        self._t = now

    def _live(self) -> bool:
        return self._started and not self._closed

    def _energy_so_far_j(self) -> float:
        return self._energy_j

    @property
    def utilisation(self) -> float:
        """Utilisation over the last interval, in [0, 1] (clipped in the model)."""
        return self._util

    def close(self) -> None:
        """Stop integrating; idempotent."""
        with self._lock:
            self._closed = True
