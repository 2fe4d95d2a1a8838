"""Splitting a GPU shared by several processes: whose activity, which share, what remainder.

Per-process GPU energy cannot be measured: a GPU has one energy counter for the whole board.
What carbonledger does is an **attribution**, interval by interval (every sampler tick and
window read):

* the device's energy ``E`` over the interval is split among its *units* (the whole GPU, or
  each MIG instance by its share of the compute slices);
* inside a unit, among the processes active on it by their activity weights (SM utilisation
  samples; or 1 each where the driver has no per-process samples);
* each process seen on the device is **own** (this process, its descendants and its process
  group, e.g. the ranks of a torchrun job), a **metered peer** (a process that was metering
  the device at the sample's time, per ``gpu_registry``, or one of its descendants), or
  **other** (unmetered);
* own weight is charged to this process; ``remainder = E - metered parts`` (idle units, other
  processes) is reported apart, and every metered process reports its part of the remainder
  (by its share of the metered energy, else evenly), so that summed over the processes
  ``charged + remainder = E`` and nothing is charged twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from carbonledger.measure.base import SourceReading
from carbonledger.measure.gpu_registry import Spans, metered_at, overlapping

# /proc/self/ns/pid of the initial (host) PID namespace: PROC_PID_INIT_INO.
HOST_PID_NAMESPACE = "pid:[4026531836]"
Kind = Literal["own", "peer", "other"]


def in_host_pid_namespace() -> bool:
    """True unless this process runs in its own PID namespace (a container without --pid=host).

    NVML reports host PIDs; inside a PID namespace they cannot be matched with this process.
    """
    try:
        return os.readlink("/proc/self/ns/pid") == HOST_PID_NAMESPACE
    except OSError:  # no procfs (not Linux): nothing says the PIDs differ
        return True


@dataclass(frozen=True, slots=True)
class Unit:
    """A part of a device that processes use: the whole GPU, or one MIG instance.

    Attributes:
        fraction: its part of the device's energy (1.0, or compute slices / device slices).
        own_w: activity of this process's processes over the interval.
        peer_w: activity of processes metered by others.
        other_w: activity of unmetered processes.
        held: this process holds the unit even without activity seen (an explicitly selected
            MIG instance): it counts as active with weight 1 when ``own_w`` is 0.
    """

    fraction: float
    own_w: float = 0.0
    peer_w: float = 0.0
    other_w: float = 0.0
    held: bool = False


@dataclass(frozen=True, slots=True)
class Split:
    """One interval of one device, split (joules).

    Attributes:
        own_j: charged to this process.
        metered_j: charged to metered processes (this one included).
        remainder_j: no metered process was charged it (idle units, unmetered processes).
        own_remainder_j: the part of ``remainder_j`` this process reports.
    """

    own_j: float
    metered_j: float
    remainder_j: float
    own_remainder_j: float


def whole(energy_j: float) -> Split:
    """A device charged whole to this process (used by no other metered process)."""
    return Split(energy_j, energy_j, 0.0, 0.0)


def split_device(energy_j: float, units: Sequence[Unit], *, peer_count: int) -> Split:
    """Split one interval's device energy over its units and the activity on them.

    Args:
        energy_j: the device's energy over the interval.
        units: the device's units (their fractions sum to at most 1; the rest is remainder).
        peer_count: metered processes on the device besides this one (for an even remainder).
    """
    own_j = metered_j = 0.0
    for unit in units:
        own_w = 1.0 if unit.held and unit.own_w <= 0 else unit.own_w
        total = own_w + unit.peer_w + unit.other_w
        if total <= 0:
            continue  # nobody active on the unit: its energy is remainder
        unit_j = energy_j * unit.fraction
        own_j += unit_j * own_w / total
        metered_j += unit_j * (own_w + unit.peer_w) / total
    remainder_j = max(0.0, energy_j - metered_j)
    if metered_j > 0:
        own_remainder_j = remainder_j * own_j / metered_j
    else:
        own_remainder_j = remainder_j / (1 + peer_count)
    return Split(own_j, metered_j, remainder_j, own_remainder_j)


def even_split(energy_j: float, *, peer_count: int) -> Split:
    """A device split evenly among this process and ``peer_count`` metered peers."""
    return split_device(energy_j, [Unit(1.0, 1.0, float(peer_count))], peer_count=peer_count)


@dataclass
class Tally:
    """A source's cumulative split: charged, reported remainder, device energy per method."""

    own_j: float = 0.0
    remainder_j: float = 0.0
    device_j: float = 0.0
    method_j: dict[str, float] = field(default_factory=dict)

    def add(self, energy_j: float, split: Split, method: str) -> tuple[float, float] | None:
        """Count one device interval; its ``(own, remainder)`` fractions (None without energy)."""
        self.own_j += split.own_j
        self.remainder_j += split.own_remainder_j
        self.device_j += energy_j
        if energy_j <= 0:
            return None
        self.method_j[method] = self.method_j.get(method, 0.0) + energy_j
        return split.own_j / energy_j, split.own_remainder_j / energy_j

    def reading(self) -> SourceReading:
        """The totals so far as a ``SourceReading``."""
        return SourceReading(self.own_j, self.remainder_j, self.device_j, dict(self.method_j))


class ProcessClassifier:
    """Tells whose a process seen on a device is: ``own``, ``peer`` or ``other``.

    Own: ``pid`` itself, its descendants, and the processes of its process group (a shell job
    or a launcher such as torchrun, whose ranks are siblings), unless another metering process
    is nearer in their ancestry. Peer: a process metering at the sample's time (``spans``;
    for a sample without a time, at any time of the interval ``[since_s, until_s]``) or one of
    its descendants.
    """

    def __init__(
        self, pid: int, spans: Spans, *, since_s: float = 0.0, until_s: float = 0.0
    ) -> None:
        self.pid = pid
        self.spans = spans
        self._during = overlapping(spans, since_s, until_s)
        self._pgid = _pgid(pid)
        self._owner: dict[int, int | None] = {}

    def _owner_of(self, pid: int) -> int | None:
        """This process, the peer whose the pid is, or ``None`` (unmetered)."""
        if pid not in self._owner:
            if pid == self.pid or pid in self.spans:
                owner: int | None = pid
            else:
                chain = _ancestors(pid)
                owner = next((a for a in chain if a == self.pid or a in self.spans), None)
                if owner is None and self._pgid is not None and _pgid(pid) == self._pgid:
                    owner = self.pid
            self._owner[pid] = owner
        return self._owner[pid]

    def kind(self, pid: int, ts_s: float | None) -> Kind:
        """Whose ``pid``'s activity at ``ts_s`` (epoch seconds; ``None``: the interval) is."""
        owner = self._owner_of(pid)
        if owner == self.pid:
            return "own"
        if owner is not None:
            metered = owner in self._during if ts_s is None else metered_at(self.spans, owner, ts_s)
            if metered:
                return "peer"
        return "other"

    def unit(
        self,
        fraction: float,
        samples: Iterable[tuple[int, float | None, float]],
        *,
        held: bool = False,
    ) -> Unit:
        """A unit whose activity is ``samples`` of ``(pid, ts_s, weight)``."""
        weights = {"own": 0.0, "peer": 0.0, "other": 0.0}
        for pid, ts_s, weight in samples:
            if weight > 0:
                weights[self.kind(pid, ts_s)] += weight
        return Unit(fraction, weights["own"], weights["peer"], weights["other"], held)


def _ancestors(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).parents()]
    except psutil.Error:
        return []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
