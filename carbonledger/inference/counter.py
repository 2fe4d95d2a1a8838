"""The hot path: counting requests, rows, errors and latency of one hosted model version.

``RequestCounter.record`` is what every metered ``predict`` call pays: a lock and a few
additions (about a microsecond, see ``bench/inference_overhead.py``). It never touches MLflow,
a device or the disk. The meter's thread swaps the accumulated figures out with :meth:`take`
once per window. Latencies are kept exactly up to ``LATENCY_SAMPLES`` per window, then as a
uniform reservoir sample of that size (Vitter's algorithm R), so memory stays bounded at any
request rate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from random import random

LATENCY_SAMPLES = 65_536


@dataclass(frozen=True, slots=True)
class Counts:
    """What a version served in one window."""

    requests: int
    rows: int
    errors: int
    busy_s: float
    latencies_s: list[float]


class RequestCounter:
    """Per-version counters, safe to call from any number of serving threads.

    Attributes:
        model_name: registered model charged.
        model_version: its version.
        team: team charged (``carbon.team`` of the inference runs), if given.
        registered_s: when the version was loaded (epoch s).
        closed_s: when it was unloaded (epoch s), ``None`` while hosted.
    """

    __slots__ = (
        "_busy_s",
        "_errors",
        "_lat",
        "_lock",
        "_requests",
        "_rows",
        "closed_s",
        "model_name",
        "model_version",
        "registered_s",
        "team",
    )

    def __init__(
        self, model_name: str, model_version: int, *, registered_s: float, team: str | None = None
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.team = team
        self.registered_s = registered_s
        self.closed_s: float | None = None
        self._lock = threading.RLock()  # re-entrant: a SIGTERM handler may take() mid-record
        self._requests = 0
        self._rows = 0
        self._errors = 0
        self._busy_s = 0.0
        self._lat: list[float] = []

    @property
    def key(self) -> tuple[str, int]:
        """``(model_name, model_version)``."""
        return (self.model_name, self.model_version)

    def record(self, elapsed_s: float, rows: int = 1, error: bool = False) -> None:
        """Count one request that took ``elapsed_s`` seconds and carried ``rows`` rows."""
        with self._lock:
            self._requests += 1
            self._rows += rows
            self._busy_s += elapsed_s
            if error:
                self._errors += 1
            lat = self._lat
            if len(lat) < LATENCY_SAMPLES:
                lat.append(elapsed_s)
            else:
                j = int(random() * self._requests)  # noqa: S311 - sampling, not security
                if j < LATENCY_SAMPLES:
                    lat[j] = elapsed_s

    def take(self) -> Counts:
        """Return what was counted since the last ``take`` and start counting afresh."""
        with self._lock:
            counts = Counts(self._requests, self._rows, self._errors, self._busy_s, self._lat)
            self._requests = self._rows = self._errors = 0
            self._busy_s = 0.0
            self._lat = []
        return counts
