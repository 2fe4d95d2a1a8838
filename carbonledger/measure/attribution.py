"""``process`` attribution: the process tree's share of the machine's CPU time and memory.

CPU share over a window = CPU time of the process and its descendants (live ones, plus the
reaped ones through ``children_user``/``children_system``) / busy CPU time of the whole machine
(same fields as the CPU estimate). RAM share = time-average of the tree's resident memory
(RSS, summed over the tree) / installed memory. Both are kept as cumulative counters that the
``Meter`` differences at window boundaries; a sampler refreshes them so that children living
between two boundaries are counted.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from carbonledger.measure.cpu_estimate import busy_and_total_s


@dataclass(frozen=True, slots=True)
class ShareSnapshot:
    """Cumulative counters at one instant (seconds)."""

    t_s: float
    tree_cpu_s: float
    machine_busy_s: float
    rss_share_s: float
    rss_share: float


def share_between(a: ShareSnapshot, b: ShareSnapshot) -> tuple[float, float]:
    """``(cpu_share, ram_share)`` of the tree between two snapshots, each in [0, 1]."""
    busy = b.machine_busy_s - a.machine_busy_s
    cpu = (b.tree_cpu_s - a.tree_cpu_s) / busy if busy > 0 else 0.0
    dt = b.t_s - a.t_s
    ram = (b.rss_share_s - a.rss_share_s) / dt if dt > 0 else b.rss_share
    return min(1.0, max(0.0, cpu)), min(1.0, max(0.0, ram))


class ProcessShareTracker:
    """Tracks the CPU time and RSS of a process tree against the whole machine."""

    def __init__(self, pid: int | None = None, *, period_s: float = 1.0) -> None:
        self.pid = pid if pid is not None else os.getpid()
        self.sample_period_s = period_s
        self._lock = threading.Lock()
        self._proc: Any = None
        self._total_ram = 1.0
        self._last_tree_s = 0.0
        self._tree_s = 0.0
        self._busy_s = 0.0
        self._t = 0.0
        self._rss_share = 0.0
        self._rss_share_s = 0.0

    def _tree(self) -> tuple[float, int]:
        import psutil

        cpu_s, rss = 0.0, 0
        procs = [self._proc]
        try:
            procs += self._proc.children(recursive=True)
        except psutil.Error:
            pass
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu_s += t.user + t.system + t.children_user + t.children_system
                    rss += p.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                continue
        return cpu_s, rss

    def start(self) -> None:
        """Take the baselines; idempotent."""
        import psutil

        with self._lock:
            if self._proc is not None:
                return
            self._proc = psutil.Process(self.pid)
            self._total_ram = float(psutil.virtual_memory().total)
            self._last_tree_s, rss = self._tree()
            self._busy_s = busy_and_total_s(psutil.cpu_times())[0]
            self._rss_share = rss / self._total_ram
            self._t = time.monotonic()

    def _advance(self) -> None:
        import psutil

        tree_s, rss = self._tree()
        # A descendant that exits unreaped takes its time along: never count backwards.
        self._tree_s += max(0.0, tree_s - self._last_tree_s)
        self._last_tree_s = tree_s
        self._busy_s = busy_and_total_s(psutil.cpu_times())[0]
        now, share = time.monotonic(), rss / self._total_ram
        self._rss_share_s += (self._rss_share + share) / 2.0 * (now - self._t)
        self._t, self._rss_share = now, share

    def sample(self) -> None:
        """Refresh the counters (the meter's sampler calls this)."""
        with self._lock:
            if self._proc is not None:
                self._advance()

    def snapshot(self) -> ShareSnapshot:
        """Refresh and return the cumulative counters."""
        with self._lock:
            if self._proc is None:
                raise RuntimeError("ProcessShareTracker.start() was not called")
            self._advance()
            return ShareSnapshot(
                self._t, self._tree_s, self._busy_s, self._rss_share_s, self._rss_share
            )
