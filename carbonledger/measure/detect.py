"""Choose the energy sources of each component from the settings and what the machine offers.

GPU: NVML (counter, else power integration) for the visible NVIDIA GPUs and amdsmi for the
visible AMD GPUs (when the optional ``amdsmi`` loads); none without either. GPU sources get the
attribution mode and the registry of metered processes (``CARBONLEDGER_GPU_SHARE_DIR``), so a
GPU shared with other metered processes is split instead of charged twice.
CPU: RAPL packages when readable (``cpu_method`` ``auto``/``rapl``), else the TDP estimate.
RAM: RAPL DRAM when readable, else 0.3725 W/GB. Every fallback leaves a human note; a RAPL
permission error also logs exactly one warning per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psutil

from carbonledger.errors import AmdSmiError, NvmlError, RaplError, RaplPermissionError
from carbonledger.measure import rapl
from carbonledger.measure.amd import open_amd_source
from carbonledger.measure.base import Attribution, EnergySource
from carbonledger.measure.cpu_estimate import CpuEstimateSource, resolve_tdp
from carbonledger.measure.gpu_registry import MeteredRegistry
from carbonledger.measure.hardware import cpu_model_name
from carbonledger.measure.nvml_source import open_gpu_source
from carbonledger.measure.ram import RamEstimateSource, total_ram_gb
from carbonledger.settings import Settings, get_settings

logger = logging.getLogger(__name__)

_warn_lock = threading.Lock()
_permission_warned = False


def _warn_permission_once(exc: RaplPermissionError) -> None:
    global _permission_warned
    with _warn_lock:
        if _permission_warned:
            return
        _permission_warned = True
    logger.warning("RAPL counters are not readable, CPU and RAM energy will be estimated: %s", exc)


def reset_warnings() -> None:
    """Forget that the RAPL permission warning was given (for tests)."""
    global _permission_warned
    with _warn_lock:
        _permission_warned = False


def _rapl_topology(s: Settings, notes: list[str]) -> rapl.RaplTopology | None:
    """The readable RAPL topology, or ``None`` with a note saying why not."""
    if s.cpu_method == "estimate":
        notes.append("CPU estimated by request (CARBONLEDGER_CPU_METHOD=estimate)")
        return None
    topo = rapl.discover(s.rapl_root)
    if not topo.cpu_domains:
        if s.cpu_method == "rapl":
            raise RaplError(
                f"no RAPL package zone under {s.rapl_root}: point CARBONLEDGER_RAPL_ROOT at the "
                "powercap tree or set CARBONLEDGER_CPU_METHOD=auto"
            )
        notes.append(f"no RAPL zones under {s.rapl_root}: CPU and RAM energy are estimated")
        return None
    try:
        rapl.check_readable(topo.cpu_domains + topo.dram)
    except RaplPermissionError as exc:
        if s.cpu_method == "rapl":
            raise
        _warn_permission_once(exc)
        notes.append(f"RAPL permission denied, fell back to estimates: {rapl.PERMISSION_FIX}")
        return None
    except RaplError as exc:
        if s.cpu_method == "rapl":
            raise
        notes.append(f"RAPL unreadable ({exc}), fell back to estimates")
        return None
    if not topo.packages:
        notes.append("no RAPL package zone: CPU energy read from psys (whole platform)")
    return topo


def _gpu_sources(s: Settings, attribution: Attribution, notes: list[str]) -> list[EnergySource]:
    """The NVIDIA and AMD GPU sources (not started); a failing library is noted in ``auto``."""
    found: list[EnergySource] = []
    share_dir = s.gpu_share_dir
    openers: list[tuple[str, type[Exception], Callable[[], tuple[Any, list[str]]]]] = [
        (
            "NVML",
            NvmlError,
            lambda: open_gpu_source(
                s.gpu_method,
                s.power_sample_hz,
                attribution=attribution,
                registry=MeteredRegistry(share_dir),
            ),
        ),
        (
            "amdsmi",
            AmdSmiError,
            lambda: open_amd_source(
                s.gpu_method, s.power_sample_hz, registry=MeteredRegistry(share_dir)
            ),
        ),
    ]
    for vendor, error, opener in openers:
        try:
            src, more = opener()
        except error as exc:
            if s.gpu_method != "auto":
                for done in found:
                    done.close()
                raise
            # A broken driver must not leave the whole run unmetered: meter the rest, say so.
            logger.warning("carbonledger: %s; GPU energy is not measured by %s", exc, vendor)
            src, more = None, [f"{vendor} failed ({exc}): its GPUs' energy is not measured"]
        notes += more
        if src is not None:
            found.append(src)
            if vendor == "amdsmi" and attribution == "process":
                notes.append(
                    "AMD GPUs have no per-process utilisation in amdsmi: each is charged whole, "
                    "or split evenly among the metered processes on it"
                )
    return found


def detect_sources(
    settings: Settings | None = None, *, attribution: Attribution | None = None
) -> tuple[list[EnergySource], list[str]]:
    """Build the sources for this machine (not started) and notes on each fallback.

    Args:
        settings: settings to use (default: ``get_settings()``).
        attribution: ``device`` or ``process`` for the GPU sources (default: the setting).

    Raises:
        RaplError: ``cpu_method="rapl"`` and RAPL cannot be read.
        NvmlError: NVML is installed but fails and ``gpu_method`` is not ``auto`` (with
            ``auto`` a failing NVML is noted and the GPU left out; absent NVML is no error).
        AmdSmiError: the same for amdsmi.
    """
    s = settings or get_settings()
    notes: list[str] = []
    gpus = _gpu_sources(s, attribution or s.attribution, notes)
    sources: list[EnergySource] = list(gpus)
    try:
        topo = _rapl_topology(s, notes)
    except BaseException:
        for gpu in gpus:
            gpu.close()  # release NVML/amdsmi before giving up
        raise
    if topo is not None:
        sources.append(rapl.RaplSource(topo.cpu_domains, component="cpu"))
    else:
        threads = psutil.cpu_count(logical=True) or 1
        model = cpu_model_name()
        tdp = resolve_tdp(model, threads, s.cpu_tdp_w)
        if tdp.source == "per-thread":
            notes.append(
                f"CPU model {model!r} is not in the TDP table: assuming {tdp.tdp_w / threads:g} W "
                f"per logical CPU x {threads} = {tdp.tdp_w:g} W (set CARBONLEDGER_CPU_TDP_W)"
            )
        sources.append(
            CpuEstimateSource(tdp.tdp_w, period_s=s.estimate_interval_s, tdp_source=tdp.source)
        )
    if topo is not None and topo.dram:
        sources.append(rapl.RaplSource(topo.dram, component="ram"))
    else:
        sources.append(RamEstimateSource(total_ram_gb()))
    return sources, notes
