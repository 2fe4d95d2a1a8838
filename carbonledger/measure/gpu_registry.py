"""Which processes on this machine meter which GPUs, and since when: one JSON file each.

A GPU source joins when its meter opens a window and leaves when the last window closes; an
entry keeps its membership span (``joined_s``, ``left_s``, epoch seconds) for ``LINGER_S``
after leaving, so that another process splitting an interval that overlapped the membership
still counts the leaver as metered. An entry that never left counts only while its process
runs (pid and start time: a reused pid is not mistaken for it).

The folder is ``CARBONLEDGER_GPU_SHARE_DIR``, default ``<tmp>/carbonledger-gpu-share``, made
world-writable with the sticky bit so the users of a shared workstation see each other (each
can remove only their own files). Every process that shares GPUs must see the same folder;
containers see each other only through a shared mount. Nothing here runs at import.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REGISTRY_DIRNAME = "carbonledger-gpu-share"
SCAN_TTL_S = 0.05
"""How long one scan of the folder is reused: within one tick's devices, never across ticks
(a peer that joined before an interval's end must be seen when that interval is split)."""
LINGER_S = 600.0
"""How long a left entry is kept for others' intervals, and after which it may be removed."""

Spans = dict[int, list[tuple[float, float]]]
"""pid -> membership spans ``(joined_s, left_s)``; ``left_s`` is ``inf`` while metering."""


def default_registry_dir() -> Path:
    """``<tmp>/carbonledger-gpu-share`` (computed when asked, never at import)."""
    return Path(tempfile.gettempdir()) / REGISTRY_DIRNAME


def process_alive(pid: int, create_time_s: float) -> bool:
    """True when ``pid`` runs and started at ``create_time_s`` (not a reused pid)."""
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - create_time_s) < 0.5
    except psutil.Error:
        return False


def _create_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


class MeteredRegistry:
    """The registry folder, as one metering process sees and writes it.

    Args:
        root: the folder (default ``default_registry_dir()``).
        alive: ``(pid, create_time_s) -> bool``: whether an entry's process still runs.
        ttl_s: how long one scan of the folder is reused.
        clock: wall clock, epoch seconds.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        alive: Callable[[int, float], bool] = process_alive,
        ttl_s: float = SCAN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = root
        self._alive = alive
        self._ttl_s = ttl_s
        self._clock = clock
        self._entry: Path | None = None
        self._body: dict[str, object] = {}
        self._scan: tuple[float, list[tuple[int, list[str], float, float]]] | None = None

    @property
    def root(self) -> Path:
        """The registry folder."""
        if self._root is None:
            self._root = default_registry_dir()
        return self._root

    def _ensure_root(self) -> None:
        if self.root.is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        try:  # shared by the users of the machine; the sticky bit keeps files their owners'
            self.root.chmod(0o1777)
        except OSError:
            logger.debug("cannot make %s world-writable", self.root, exc_info=True)

    def _write(self, path: Path, body: dict[str, object]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def join(self, pid: int, devices: Sequence[str]) -> bool:
        """Announce that ``pid`` meters ``devices`` (UUIDs) from now; False if not writable."""
        if self._entry is not None:
            return True
        body: dict[str, object] = {
            "pid": pid,
            "create_time_s": _create_time(pid),
            "devices": list(devices),
            "joined_s": self._clock(),
            "left_s": None,
        }
        try:
            self._ensure_root()
            self._prune()
            path = self.root / f"{pid}-{uuid.uuid4().hex[:12]}.json"
            self._write(path, body)
        except OSError as exc:
            logger.debug("GPU share registry %s unusable: %s", self.root, exc)
            return False
        self._entry, self._body, self._scan = path, body, None
        return True

    def leave(self) -> None:
        """Record that this process stopped metering (kept ``LINGER_S``); never raises."""
        entry, self._entry = self._entry, None
        if entry is None:
            return
        try:
            self._write(entry, {**self._body, "left_s": self._clock()})
        except OSError:
            logger.debug("cannot update %s", entry, exc_info=True)
        self._scan = None

    def announce(self, active: bool, pid: int, devices: Sequence[str]) -> str | None:
        """Join (``active``) or leave; a note when joining failed, else ``None``."""
        if not active:
            self.leave()
            return None
        if self.join(pid, devices):
            return None
        return (
            f"the GPU share registry {self.root} is not writable: other metered processes "
            "will not see this one (set CARBONLEDGER_GPU_SHARE_DIR)"
        )

    def members(self, device: str, own_pid: int) -> Spans:
        """Other processes that meter ``device`` now or did within ``LINGER_S``: their spans."""
        spans: Spans = {}
        for pid, devices, joined_s, left_s in self._entries():
            if pid != own_pid and device in devices:
                spans.setdefault(pid, []).append((joined_s, left_s))
        return spans

    def _entries(self) -> list[tuple[int, list[str], float, float]]:
        now = time.monotonic()
        if self._scan is not None and now - self._scan[0] < self._ttl_s:
            return self._scan[1]
        wall = self._clock()
        entries = []
        for body in self._bodies():
            try:
                pid, devices = int(body["pid"]), [str(d) for d in body["devices"]]
                joined_s = float(body.get("joined_s") or 0.0)
                left = body.get("left_s")
                left_s = float(left) if left is not None else math.inf
                started = float(body.get("create_time_s") or 0.0)
            except (ValueError, KeyError, TypeError):
                continue  # not an entry of this version
            if left is None and not self._alive(pid, started):
                continue  # crashed without leaving: since when is unknown, so not at all
            if wall - left_s <= LINGER_S:
                entries.append((pid, devices, joined_s, left_s))
        self._scan = (now, entries)
        return entries

    def _bodies(self) -> list[dict[str, Any]]:
        bodies = []
        try:
            paths = list(self.root.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            try:
                body = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced, or removed
            if isinstance(body, dict):
                bodies.append(body)
        return bodies

    def _prune(self) -> None:
        """Remove entries that left more than ``LINGER_S`` ago (where allowed)."""
        wall = self._clock()
        for path in self.root.glob("*.json"):
            try:
                left = json.loads(path.read_text()).get("left_s")
                if left is not None and wall - float(left) > LINGER_S:
                    path.unlink()
            except (OSError, ValueError, TypeError, AttributeError):
                continue  # someone else's file (sticky folder), or not an entry


def overlapping(spans: Spans, since_s: float, until_s: float) -> frozenset[int]:
    """The pids whose membership overlaps ``[since_s, until_s]``."""
    return frozenset(
        pid
        for pid, found in spans.items()
        if any(joined <= until_s and left >= since_s for joined, left in found)
    )


def metered_at(spans: Spans, pid: int, ts_s: float) -> bool:
    """True when ``pid`` was metering at ``ts_s``."""
    return any(joined <= ts_s <= left for joined, left in spans.get(pid, ()))
