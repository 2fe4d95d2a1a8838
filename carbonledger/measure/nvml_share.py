"""What NVML tells about the processes on a GPU: SM utilisation samples, running processes, MIG.

* ``ProcessActivity`` reads ``nvmlDeviceGetProcessUtilization`` (SM utilisation per process,
  samples newer than the last one seen) at every tick; where the driver lacks it (older
  drivers, vGPU) it falls back to ``nvmlDeviceGetComputeRunningProcesses`` (weight 1 per
  process: an even split); where both are missing it gives up (the device is then charged
  whole). The source says which, in its notes.
* ``mig_instances`` lists the MIG instances of a MIG-enabled GPU with their part of its
  compute slices (``computeInstanceSliceCount`` of the instance over the largest GPU-instance
  profile's ``sliceCount``, e.g. 2/7 for a 2g instance on an H100; else the instance's SMs over
  the device's). Per-process utilisation does not exist inside MIG: within an instance,
  processes split evenly.

Every call goes through ``nvml.nvml_call`` (errors translated once). Nothing runs at import.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from carbonledger.errors import NvmlError
from carbonledger.measure import nvml

logger = logging.getLogger(__name__)

ActivityKind = Literal["sm", "even", "none"]
_NO_SAMPLES = frozenset({0, nvml.NOT_FOUND})
_UNSUPPORTED = frozenset(
    getattr(nvml.pynvml, name, code)
    for name, code in (
        ("NVML_ERROR_NOT_SUPPORTED", 3),
        ("NVML_ERROR_FUNCTION_NOT_FOUND", 13),
        ("NVML_ERROR_NO_PERMISSION", 4),
    )
)


def _now_us() -> int:
    return int(time.time() * 1e6)


Sample = tuple[int, float | None, float]
"""``(pid, ts_s, weight)``: a process's activity at a time (epoch seconds; ``None``: over the
whole interval, as for a snapshot of the running processes)."""


def running_pids(handle: Any) -> list[int]:
    """Processes with a compute context on ``handle`` (a GPU or a MIG instance).

    Raises:
        NvmlError: the query failed (``NvmlNotSupportedError`` where the driver lacks it).
    """
    procs = nvml.nvml_call("nvmlDeviceGetComputeRunningProcesses", handle) or []
    return [int(p.pid) for p in procs]


def present(handle: Any) -> list[Sample]:
    """The processes on ``handle`` over the interval, weight 1 each (an even split)."""
    return [(pid, None, 1.0) for pid in running_pids(handle)]


class ProcessActivity:
    """Activity per process on one GPU between two calls of ``samples``.

    ``kind`` is ``sm`` (SM utilisation samples), ``even`` (running processes, weight 1 each:
    the driver has no per-process samples) or ``none`` (neither query works).
    """

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.kind: ActivityKind = "none"
        self._last_ts_us = 0

    def start(self) -> ActivityKind:
        """Find which query the driver supports (never raises); older samples are skipped."""
        self._last_ts_us = _now_us()
        try:
            nvml.nvml_call("nvmlDeviceGetProcessUtilization", self._handle, self._last_ts_us)
            self.kind = "sm"
        except NvmlError as exc:
            if exc.code in _NO_SAMPLES:
                self.kind = "sm"
            elif exc.code in _UNSUPPORTED or exc.code is None:
                self.kind = self._even_supported()
            else:  # a failing GPU: the energy source reports it; sharing just gives up
                logger.debug("per-process GPU activity unavailable: %s", exc)
                self.kind = "none"
        return self.kind

    def _even_supported(self) -> ActivityKind:
        try:
            running_pids(self._handle)
        except NvmlError:
            return "none"
        return "even"

    def samples(self) -> list[Sample] | None:
        """Activity since the previous call; ``None`` when nothing can be known."""
        if self.kind == "none":
            return None
        try:
            if self.kind == "even":
                return present(self._handle)
            raw = nvml.nvml_call("nvmlDeviceGetProcessUtilization", self._handle, self._last_ts_us)
        except NvmlError as exc:
            if exc.code in _NO_SAMPLES:
                return []  # no process ran a kernel since the last call: the device idled
            logger.debug("per-process GPU activity unavailable this tick: %s", exc)
            return None
        found: list[Sample] = []
        now_s, seen_us = time.time(), self._last_ts_us
        for sample in raw or []:
            ts_us = int(sample.timeStamp)
            if ts_us <= seen_us:
                continue
            self._last_ts_us = max(self._last_ts_us, ts_us)
            # NVML stamps samples with the CPU clock in µs; anything else is taken as now.
            ts_s = ts_us / 1e6 if ts_us > 1e15 else now_s
            found.append((int(sample.pid), ts_s, float(sample.smUtil)))
        return found


@dataclass(frozen=True, slots=True)
class MigInstance:
    """One MIG instance (a GPU instance + compute instance): handle, UUID, share of the GPU."""

    handle: Any
    uuid: str
    fraction: float


def device_slices(handle: Any) -> int | None:
    """Compute slices of the whole GPU: the largest GPU-instance profile's ``sliceCount``."""
    best = 0
    for profile in range(nvml.GPU_INSTANCE_PROFILE_COUNT):
        try:
            info = nvml.nvml_call("nvmlDeviceGetGpuInstanceProfileInfo", handle, profile)
        except NvmlError:
            continue  # a profile this GPU does not offer
        best = max(best, int(getattr(info, "sliceCount", 0) or 0))
    return best or None


def _fraction(parent: Any, mig: Any, slices: int | None) -> float | None:
    attrs = nvml.nvml_call("nvmlDeviceGetAttributes", mig)
    ci_slices = int(getattr(attrs, "computeInstanceSliceCount", 0) or 0)
    if slices and ci_slices:
        return min(1.0, ci_slices / slices)
    mig_sms = int(getattr(attrs, "multiprocessorCount", 0) or 0)
    try:
        parent_sms = int(nvml.nvml_call("nvmlDeviceGetAttributes", parent).multiprocessorCount)
    except (NvmlError, AttributeError):
        parent_sms = 0
    return min(1.0, mig_sms / parent_sms) if mig_sms and parent_sms else None


def mig_instances(parent: Any) -> tuple[list[MigInstance], list[str]]:
    """The MIG instances of a MIG-enabled GPU and notes on those that cannot be metered.

    An instance whose part of the GPU cannot be told is left out (never charged the whole
    GPU), with a note; a failing query gives no instance and a note, never an exception.
    """
    notes: list[str] = []
    try:
        limit = int(nvml.nvml_call("nvmlDeviceGetMaxMigDeviceCount", parent))
    except NvmlError as exc:
        return [], [f"MIG instances cannot be listed ({exc}): their energy is not measured"]
    slices = device_slices(parent)
    found: list[MigInstance] = []
    for index in range(limit):
        try:
            mig = nvml.nvml_call("nvmlDeviceGetMigDeviceHandleByIndex", parent, index)
        except NvmlError:
            continue  # no instance at this index
        try:
            uuid = nvml.text(nvml.nvml_call("nvmlDeviceGetUUID", mig))
            fraction = _fraction(parent, mig, slices)
        except NvmlError as exc:
            notes.append(f"MIG instance {index} not metered: {exc}")
            continue
        if fraction is None:
            notes.append(
                f"MIG instance {uuid}: its share of the GPU's compute slices is unknown, "
                "so its energy is not measured (never the whole GPU's)"
            )
            continue
        found.append(MigInstance(mig, uuid, fraction))
    return found, notes
