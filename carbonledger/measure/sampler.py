"""One cheap daemon thread that runs periodic tasks (power sampling, estimates, RAPL wrap watch).

The ``Meter`` starts it only when a source asks for sampling. Each task has its own period;
the thread sleeps until the next one is due. The thread's own CPU time is kept so the
overhead of metering can be measured (``cpu_time_s``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Task:
    period_s: float
    fn: Callable[[], None]
    due_s: float


class Sampler:
    """Runs ``fn()`` every ``period_s`` seconds on one background daemon thread."""

    def __init__(self, name: str = "carbonledger-sampler") -> None:
        self._name = name
        self._tasks: list[_Task] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_time_s = 0.0
        self._ticks = 0

    def add(self, period_s: float, fn: Callable[[], None]) -> None:
        """Register a task before ``start``; ``period_s`` must be positive."""
        if period_s <= 0:
            raise ValueError(f"sampling period must be positive, got {period_s}")
        self._tasks.append(_Task(period_s, fn, time.monotonic() + period_s))

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def cpu_time_s(self) -> float:
        """CPU time the sampler thread has used so far, in seconds."""
        return self._cpu_time_s

    @property
    def ticks(self) -> int:
        """How many task runs the thread has done."""
        return self._ticks

    def start(self) -> None:
        """Start the thread if there is any task; idempotent."""
        if self.running or not self._tasks:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and wait for it; idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            next_due = min(t.due_s for t in self._tasks)
            if next_due > now:
                if self._stop.wait(next_due - now):
                    break
                continue
            for task in self._tasks:
                if task.due_s <= now:
                    try:
                        task.fn()
                    except Exception:  # a failing sample must never kill the thread
                        logger.warning("carbonledger sampling task failed", exc_info=True)
                    self._ticks += 1
                    task.due_s += task.period_s
                    if task.due_s <= now:  # skip missed periods instead of bursting after a stall
                        task.due_s = now + task.period_s
            self._cpu_time_s = time.thread_time()
