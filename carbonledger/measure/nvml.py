"""NVIDIA GPUs through NVML (nvidia-ml-py): energy counters, or power integration before Volta.

Volta and newer expose ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load): the
source reads it at window boundaries only. Where it is unsupported, a background sampler
integrates ``nvmlDeviceGetPowerUsage`` (mW) at ``power_sample_hz`` (>= 10 Hz) with the
trapezoid rule. ``CUDA_VISIBLE_DEVICES`` (indices and ``GPU-`` UUIDs) selects the devices.
NVML errors are translated once, through ``_ERROR_MAP``, into ``NvmlError`` subclasses.
Nothing here touches NVML at import time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from carbonledger.errors import NvmlError, NvmlNotSupportedError
from carbonledger.measure.base import (
    METHOD_NVML_COUNTER,
    METHOD_NVML_POWER,
    Component,
    LockedSource,
)

try:  # nvidia-ml-py is a dependency, but a broken install must not break import
    import pynvml
except ImportError:  # pragma: no cover - exercised only without the wheel
    pynvml = None

logger = logging.getLogger(__name__)

GpuMode = Literal["counter", "power"]

# Real exception class and codes, captured at import so tests that patch ``pynvml`` with
# ``autospec=True`` still raise and catch the genuine NVML exceptions.
_NVMLError: type[Exception] = pynvml.NVMLError if pynvml is not None else OSError
_ABSENT_CODES = frozenset(
    getattr(pynvml, name, -1)
    for name in ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_DRIVER_NOT_LOADED")
)
_ERROR_MAP: dict[int, tuple[type[NvmlError], str]] = {
    getattr(pynvml, "NVML_ERROR_NOT_SUPPORTED", 3): (
        NvmlNotSupportedError,
        "this GPU or driver lacks the query; use CARBONLEDGER_GPU_METHOD=power or auto",
    ),
    getattr(pynvml, "NVML_ERROR_NO_PERMISSION", 4): (
        NvmlError,
        "the user may not query this GPU; check device permissions",
    ),
    getattr(pynvml, "NVML_ERROR_LIBRARY_NOT_FOUND", 12): (
        NvmlError,
        "install the NVIDIA driver (libnvidia-ml.so) or run without GPUs",
    ),
    getattr(pynvml, "NVML_ERROR_DRIVER_NOT_LOADED", 9): (
        NvmlError,
        "load the NVIDIA kernel driver (nvidia-smi should work)",
    ),
    getattr(pynvml, "NVML_ERROR_GPU_IS_LOST", 15): (
        NvmlError,
        "the GPU fell off the bus; check `nvidia-smi` and the kernel log",
    ),
}


def translate_nvml_error(exc: Exception, what: str) -> NvmlError:
    """Turn a pynvml ``NVMLError`` into the matching carbonledger exception."""
    value = getattr(exc, "value", None)
    code = value if isinstance(value, int) else None
    default = (NvmlError, "check the NVIDIA driver with `nvidia-smi`")
    cls, fix = _ERROR_MAP.get(code, default) if code is not None else default
    return cls(f"NVML {what} failed: {exc} ({fix})", code=code)


def nvml_call(name: str, *args: Any) -> Any:
    """Call ``pynvml.<name>(*args)``, translating NVML errors into ``NvmlError``."""
    if pynvml is None:
        raise NvmlError("nvidia-ml-py is not installed (pip install nvidia-ml-py)")
    try:
        return getattr(pynvml, name)(*args)
    except _NVMLError as exc:
        raise translate_nvml_error(exc, name) from exc


def nvml_init() -> bool:
    """Initialise NVML (reference-counted by the library); False when NVML or GPUs are absent.

    Raises:
        NvmlError: NVML is present but failed for another reason.
    """
    if pynvml is None:
        return False
    try:
        nvml_call("nvmlInit")
    except NvmlError as exc:
        if exc.code in _ABSENT_CODES:
            return False
        raise
    except OSError:  # some nvidia-ml-py versions let a loader error through
        return False
    return True


def nvml_shutdown() -> None:
    """Release one NVML reference; never raises."""
    try:
        nvml_call("nvmlShutdown")
    except NvmlError:
        logger.debug("nvmlShutdown failed", exc_info=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_visible_devices(
    env: str | None, count: int, uuid_of: Callable[[int], str]
) -> tuple[list[int], list[str]]:
    """Physical indices selected by ``CUDA_VISIBLE_DEVICES``, with notes on ignored entries.

    Like CUDA: unset means all devices, an empty value means none, entries are indices or
    (unique prefixes of) ``GPU-`` UUIDs, and the list stops at the first invalid entry.
    """
    if env is None:
        return list(range(count)), []
    chosen: list[int] = []
    uuids: list[str] | None = None
    for raw in env.split(","):
        entry = raw.strip()
        index: int | None = None
        if entry.isdigit():
            index = int(entry) if int(entry) < count else None
        elif entry.upper().startswith("GPU-"):
            uuids = uuids if uuids is not None else [uuid_of(i) for i in range(count)]
            matches = [i for i, u in enumerate(uuids) if u.lower().startswith(entry.lower())]
            index = matches[0] if len(matches) == 1 else None
        if index is None:
            note = "" if not entry else f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no GPU"
            if entry.upper().startswith("MIG-"):
                note = f"MIG instance {entry!r} is not metered (NVML reports whole-GPU energy)"
            return chosen, [f"{note}; later entries are ignored, as CUDA does"] if note else []
        if index not in chosen:
            chosen.append(index)
    return chosen, []


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One visible GPU: its NVML handle, physical index and UUID."""

    handle: Any
    index: int
    uuid: str


def visible_gpus() -> tuple[list[GpuDevice], list[str]]:
    """The GPUs this process may use (NVML must be initialised); notes on ignored entries."""
    count = int(nvml_call("nvmlDeviceGetCount"))

    def uuid_of(i: int) -> str:
        return _text(nvml_call("nvmlDeviceGetUUID", nvml_call("nvmlDeviceGetHandleByIndex", i)))

    indices, notes = parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"), count, uuid_of)
    devices = []
    for i in indices:
        handle = nvml_call("nvmlDeviceGetHandleByIndex", i)
        devices.append(GpuDevice(handle, i, _text(nvml_call("nvmlDeviceGetUUID", handle))))
    return devices, notes


def counter_supported(device: GpuDevice) -> bool:
    """True when the device has the NVML total-energy counter (Volta and newer)."""
    try:
        nvml_call("nvmlDeviceGetTotalEnergyConsumption", device.handle)
    except NvmlNotSupportedError:
        return False
    return True


class NvmlGpuSource(LockedSource):
    """Energy of the visible GPUs, by counter deltas or by integrating sampled power.

    ``energy_j`` is cumulative since ``start`` over all devices; the counter path reads the
    counters at each call (window boundaries), the power path adds a fresh sample to the
    integral the sampler keeps. Peak power is known on the power path only (0.0 with counters).
    """

    component: Component = "gpu"

    def __init__(
        self,
        devices: Sequence[GpuDevice],
        *,
        mode: GpuMode,
        sample_hz: float = 10.0,
        owns_nvml: bool = True,
    ) -> None:
        if sample_hz < 10.0:
            raise ValueError("power integration needs at least 10 Hz")
        self._devices = tuple(devices)
        self.mode: GpuMode = mode
        self.method = METHOD_NVML_COUNTER if mode == "counter" else METHOD_NVML_POWER
        self.devices = tuple(d.uuid for d in self._devices)
        self.sample_period_s: float | None = 1.0 / sample_hz if mode == "power" else None
        self._owns_nvml = owns_nvml
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._last_mj: list[int] = []
        self._total_j = 0.0
        self._last_t = 0.0
        self._last_power_w = 0.0
        self._peak_w = 0.0

    def start(self) -> None:
        """Read the baselines (counter) or the first power sample; idempotent."""
        with self._lock:
            if self._started:
                return
            if self.mode == "counter":
                self._last_mj = [self._read_mj(d) for d in self._devices]
            else:
                self._last_t, self._last_power_w = time.monotonic(), self._read_power_w()
            self._started = True

    def _read_mj(self, device: GpuDevice) -> int:
        return int(nvml_call("nvmlDeviceGetTotalEnergyConsumption", device.handle))

    def _read_power_w(self) -> float:
        return (
            sum(float(nvml_call("nvmlDeviceGetPowerUsage", d.handle)) for d in self._devices) / 1e3
        )

    def _advance(self) -> None:
        # Caller holds the lock.
        if self.mode == "counter":
            for i, device in enumerate(self._devices):
                now_mj = self._read_mj(device)
                delta_mj = now_mj - self._last_mj[i]
                # A counter that goes back means a driver reload: count from its new origin.
                self._total_j += (delta_mj if delta_mj >= 0 else now_mj) / 1e3
                self._last_mj[i] = now_mj
            return
        now, power_w = time.monotonic(), self._read_power_w()
        self._total_j += (self._last_power_w + power_w) / 2.0 * (now - self._last_t)
        self._last_t, self._last_power_w = now, power_w
        self._peak_w = max(self._peak_w, power_w)

    def _live(self) -> bool:
        return self._started and not self._closed

    def _energy_so_far_j(self) -> float:
        return self._total_j

    def close(self) -> None:
        """Release NVML; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._owns_nvml:
            nvml_shutdown()


def open_gpu_source(
    gpu_method: str = "auto", sample_hz: float = 10.0
) -> tuple[NvmlGpuSource | None, list[str]]:
    """Build the GPU source for this process, or ``None`` when there is no NVML or no GPU.

    Raises:
        NvmlNotSupportedError: ``gpu_method="counter"`` on a GPU without an energy counter.
        NvmlError: NVML is installed but fails.
    """
    if not nvml_init():
        return None, []
    try:
        devices, notes = visible_gpus()
        if not devices:
            nvml_shutdown()
            return None, notes
        mode: GpuMode = "power" if gpu_method == "power" else "counter"
        if mode == "counter":
            unsupported = [d.uuid for d in devices if not counter_supported(d)]
            if unsupported and gpu_method == "counter":
                raise NvmlNotSupportedError(
                    f"GPUs {unsupported} have no NVML energy counter (pre-Volta): set "
                    "CARBONLEDGER_GPU_METHOD=power or auto"
                )
            if unsupported:
                mode = "power"
                notes.append(
                    f"GPU energy counter unsupported on {len(unsupported)} device(s) "
                    f"(pre-Volta): integrating power at {sample_hz:g} Hz"
                )
        return NvmlGpuSource(devices, mode=mode, sample_hz=sample_hz), notes
    except BaseException:
        nvml_shutdown()
        raise
