"""CPU and DRAM energy from the Linux powercap RAPL interface (root injectable for tests).

Zones live under ``/sys/class/powercap`` as ``intel-rapl:N`` (AMD since Linux 5.8 uses the
same ``intel-rapl`` driver; a tree with ``amd-rapl:N`` names is read the same way). Each top
zone named ``package-N`` is one socket; its ``dram`` subzone is that socket's memory. CPU
energy is the sum of the package zones; ``psys`` (the whole platform) is never added on top
of packages (it is used alone only when a machine exposes no package zone). ``core`` and
``uncore`` subzones are inside their package and are not added either.

``energy_uj`` wraps at ``max_energy_range_uj``; a watcher reads every counter at least twice
per shortest possible wrap time (range / ``MAX_DOMAIN_POWER_W``), so no wrap goes unseen.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from carbonledger.errors import RaplError, RaplPermissionError
from carbonledger.measure.base import METHOD_RAM_RAPL, METHOD_RAPL, Component, LockedSource

# A conservative upper bound of one RAPL domain's power: no socket or DIMM set draws this.
MAX_DOMAIN_POWER_W = 1000.0
# Never watch less often than this, so peak power stays resolved on long windows.
MAX_WATCH_PERIOD_S = 60.0
# Counters tick in ~1 ms steps: power over shorter spans than this is noise, not a peak.
MIN_PEAK_SPAN_S = 0.1

_ZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):(\d+)$")
_SUBZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):(\d+):(\d+)$")

PERMISSION_FIX = (
    "RAPL energy_uj is root-only since Linux 5.10: run as root, grant read access "
    "(e.g. `sudo chmod a+r /sys/class/powercap/*/energy_uj`), or accept the estimate "
    "(CARBONLEDGER_CPU_METHOD=estimate)"
)


@dataclass(frozen=True, slots=True)
class RaplDomain:
    """One RAPL zone: its name (``package-0``, ``dram``, ``psys``), folder and counter range."""

    name: str
    path: Path
    max_energy_range_uj: int
    socket: int

    @property
    def label(self) -> str:
        """Device label used in results, e.g. ``package-0`` or ``dram-1``."""
        return self.name if self.name.startswith("package") else f"{self.name}-{self.socket}"


@dataclass(frozen=True, slots=True)
class RaplTopology:
    """The domains found under a powercap root."""

    packages: tuple[RaplDomain, ...] = ()
    dram: tuple[RaplDomain, ...] = ()
    psys: tuple[RaplDomain, ...] = ()
    ignored: tuple[str, ...] = field(default=())

    @property
    def cpu_domains(self) -> tuple[RaplDomain, ...]:
        """What CPU energy sums: the packages, else psys (never both)."""
        return self.packages or self.psys


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except PermissionError as exc:
        raise RaplPermissionError(f"cannot read {path}: {PERMISSION_FIX}") from exc
    except (OSError, ValueError) as exc:
        raise RaplError(f"cannot read {path}: {exc} (check the powercap tree)") from exc


def _domain(path: Path, socket: int) -> RaplDomain | None:
    try:
        name = (path / "name").read_text().strip()
        max_range = int((path / "max_energy_range_uj").read_text().strip())
    except (OSError, ValueError):
        return None
    return RaplDomain(name=name, path=path, max_energy_range_uj=max_range, socket=socket)


def discover(root: Path) -> RaplTopology:
    """Find package, DRAM and psys domains under ``root`` (no counter is read)."""
    if not root.is_dir():
        return RaplTopology()
    packages: list[RaplDomain] = []
    dram: list[RaplDomain] = []
    psys: list[RaplDomain] = []
    ignored: list[str] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        zone = _ZONE_RE.match(entry.name)
        if not zone:
            continue
        dom = _domain(entry, int(zone.group(2)))
        if dom is None:
            continue
        if dom.name.startswith("package"):
            packages.append(dom)
        elif dom.name == "psys":
            psys.append(dom)
        elif dom.name == "dram":  # some servers expose dram as a top zone
            dram.append(dom)
        else:
            ignored.append(dom.name)
        # Subzones are usually both nested and linked at the top level; look in both places.
        subs = {p.name: p for p in entry.iterdir() if _SUBZONE_RE.match(p.name)}
        subs.update({p.name: p for p in root.glob(f"{entry.name}:*") if _SUBZONE_RE.match(p.name)})
        for sub_name in sorted(subs):
            sub = _domain(subs[sub_name], dom.socket)
            if sub is not None and sub.name == "dram" and dom.name.startswith("package"):
                dram.append(sub)
            elif sub is not None:
                ignored.append(sub.name)
    return RaplTopology(tuple(packages), tuple(dram), tuple(psys), tuple(ignored))


def watch_period_s(
    domains: tuple[RaplDomain, ...], max_power_w: float = MAX_DOMAIN_POWER_W
) -> float:
    """Seconds between watcher reads: half the shortest time any counter takes to wrap."""
    shortest_wrap_s = min(
        (d.max_energy_range_uj / 1e6 / max_power_w for d in domains), default=MAX_WATCH_PERIOD_S
    )
    return max(0.001, min(MAX_WATCH_PERIOD_S, shortest_wrap_s / 2.0))


class _Counter:
    """One wrapping ``energy_uj`` counter turned into monotonic joules."""

    def __init__(self, domain: RaplDomain) -> None:
        self.domain = domain
        self._path = domain.path / "energy_uj"
        self._last_uj = _read_int(self._path)
        self.total_j = 0.0

    def advance(self) -> float:
        now_uj = _read_int(self._path)
        delta_uj = now_uj - self._last_uj
        if delta_uj < 0:  # wrapped once (the watcher guarantees not twice)
            delta_uj += self.domain.max_energy_range_uj
        self._last_uj = now_uj
        self.total_j += delta_uj / 1e6
        return delta_uj / 1e6


class RaplSource(LockedSource):
    """Cumulative energy of a set of RAPL domains (CPU packages or DRAM), wrap-safe.

    The counters are read at every ``energy_j`` call and by the watcher (``sample``) every
    ``sample_period_s``, often enough that no counter can wrap twice between two reads; the
    highest power between two reads is kept for ``pop_peak_power_w``.
    """

    def __init__(
        self,
        domains: tuple[RaplDomain, ...],
        *,
        component: Component = "cpu",
        max_power_w: float = MAX_DOMAIN_POWER_W,
    ) -> None:
        if not domains:
            raise RaplError("no RAPL domain to read (check CARBONLEDGER_RAPL_ROOT)")
        self.component: Component = component
        self.method = METHOD_RAPL if component == "cpu" else METHOD_RAM_RAPL
        self.devices = tuple(d.label for d in domains)
        self.sample_period_s: float | None = watch_period_s(domains, max_power_w)
        self._domains = domains
        self._counters: list[_Counter] = []
        self._lock = threading.Lock()
        self._span_t = 0.0
        self._span_j = 0.0
        self._peak_w = 0.0
        self._closed = False

    def start(self) -> None:
        """Read the baselines; raises ``RaplPermissionError`` when a counter is unreadable."""
        with self._lock:
            if not self._counters:
                self._counters = [_Counter(d) for d in self._domains]
                self._span_t, self._span_j = time.monotonic(), 0.0

    def _advance(self) -> None:
        now = time.monotonic()
        self._span_j += sum(c.advance() for c in self._counters)
        if now - self._span_t >= MIN_PEAK_SPAN_S:
            self._peak_w = max(self._peak_w, self._span_j / (now - self._span_t))
            self._span_t, self._span_j = now, 0.0

    def _live(self) -> bool:
        return bool(self._counters) and not self._closed

    def _energy_so_far_j(self) -> float:
        return sum(c.total_j for c in self._counters)

    def close(self) -> None:
        """Stop reading; idempotent."""
        with self._lock:
            self._closed = True


def check_readable(domains: tuple[RaplDomain, ...]) -> None:
    """Read each domain's counter once.

    Raises:
        RaplPermissionError: a counter exists but is root-only.
        RaplError: a counter cannot be read for another reason.
    """
    for d in domains:
        _read_int(d.path / "energy_uj")
