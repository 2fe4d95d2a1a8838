"""AMD GPUs (Instinct MI250X/MI300X, Radeon) through amdsmi: energy counter, or power integration.

``amdsmi`` is optional (``pip install 'carbonledger[amd]'``) and needs ROCm's
``libamd_smi.so``; it is imported the first time an AMD source is asked for, never at import
(a failed import is remembered once per process). ``amdsmi_get_energy_count`` gives an
accumulator and its resolution (µJ per count): energy is their product; a counter that goes
back has wrapped (at 2**32 counts while it is below 2**32, else 2**64) unless the implied
power is impossible, which means a driver reload. A sampler reads the counter often enough
that it never wraps twice between reads. Where the counter is unsupported, socket power
(``current_socket_power``, else ``average_socket_power``, W) is integrated at >= 10 Hz.

Devices: ``ROCR_VISIBLE_DEVICES`` (indices or UUIDs) selects among all GPUs, then
``HIP_VISIBLE_DEVICES`` (or ``CUDA_VISIBLE_DEVICES``, which HIP honours when
``HIP_VISIBLE_DEVICES`` is unset) among those; indices follow amdsmi's order. amdsmi errors are
translated once, through ``_ERROR_MAP``, into ``AmdSmiError`` subclasses.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from carbonledger.errors import AmdSmiError, AmdSmiNotSupportedError
from carbonledger.measure import short_window
from carbonledger.measure.base import (
    METHOD_AMDSMI_COUNTER,
    METHOD_AMDSMI_EVEN_SHARE,
    METHOD_AMDSMI_POWER,
)
from carbonledger.measure.gpu_base import GpuSourceBase
from carbonledger.measure.gpu_registry import MeteredRegistry, overlapping
from carbonledger.measure.gpu_share import even_split, whole
from carbonledger.measure.visible import select_visible

logger = logging.getLogger(__name__)

amdsmi: Any = None
"""The amdsmi module once imported (tests patch it with ``autospec``)."""
_unavailable: str | None = None

AmdMode = Literal["counter", "power"]
MAX_GPU_POWER_W = 1500.0
"""Above any AMD board's power (MI300X: 750 W): bounds the counter's shortest wrap time."""
MAX_WATCH_PERIOD_S = 60.0
WRAP_32 = 2**32
WRAP_64 = 2**64

_ABSENT = frozenset({4, 18, 34, 51})  # FAIL_LOAD_MODULE, INIT_ERROR, DRIVER_NOT_LOADED, NO_DRV
_ERROR_MAP: dict[int, tuple[type[AmdSmiError], str]] = {
    2: (AmdSmiNotSupportedError, "this GPU or driver lacks the query; use auto or power"),
    3: (AmdSmiNotSupportedError, "this amdsmi version lacks the query; update ROCm"),
    10: (AmdSmiError, "the user may not query this GPU; add it to the render and video groups"),
    34: (AmdSmiError, "load the amdgpu kernel driver (amd-smi should work)"),
}


def load_amdsmi() -> Any:
    """The ``amdsmi`` module, or ``None`` when it is missing or cannot load ``libamd_smi.so``."""
    global amdsmi, _unavailable
    if amdsmi is not None:
        return amdsmi
    if _unavailable is not None:
        return None
    try:  # amdsmi prints to stdout when libamd_smi.so is missing: keep training logs clean
        with contextlib.redirect_stdout(io.StringIO()):
            import amdsmi as module  # type: ignore[import-not-found,unused-ignore]
    except Exception as exc:  # noqa: BLE001 - ImportError, or KeyError/OSError without ROCm
        _unavailable = f"{type(exc).__name__}: {exc}"
        return None
    amdsmi = module
    return module


def reset_amdsmi() -> None:
    """Forget the imported module and any failed import (tests)."""
    global amdsmi, _unavailable
    amdsmi, _unavailable = None, None


def _is_amdsmi_error(exc: BaseException) -> bool:
    return any(c.__name__ == "AmdSmiException" for c in type(exc).__mro__)


def translate_amdsmi_error(exc: BaseException, what: str) -> AmdSmiError:
    """Turn an amdsmi exception into the matching carbonledger exception."""
    get_code = getattr(exc, "get_error_code", None)
    code = get_code() if callable(get_code) else getattr(exc, "err_code", None)
    code = code if isinstance(code, int) else None
    default = (AmdSmiError, "check the AMD driver with `amd-smi`")
    cls, fix = _ERROR_MAP.get(code, default) if code is not None else default
    return cls(f"amdsmi {what} failed: {exc} ({fix})", code=code)


def amd_call(name: str, *args: Any) -> Any:
    """Call ``amdsmi.<name>(*args)``, translating amdsmi errors into ``AmdSmiError``."""
    lib = load_amdsmi()
    if lib is None:
        raise AmdSmiError(
            f"amdsmi is not available ({_unavailable}): pip install 'carbonledger[amd]' and "
            "install ROCm's amd-smi-lib"
        )
    try:
        return getattr(lib, name)(*args)
    except Exception as exc:
        if not _is_amdsmi_error(exc):
            raise
        raise translate_amdsmi_error(exc, name) from exc


def amd_init() -> bool:
    """Initialise amdsmi for GPUs; False when amdsmi, ROCm or the driver are absent.

    Raises:
        AmdSmiError: amdsmi is present but failed for another reason.
    """
    lib = load_amdsmi()
    if lib is None:
        return False
    try:
        amd_call("amdsmi_init", lib.AmdSmiInitFlags.INIT_AMD_GPUS)
    except AmdSmiError as exc:
        if exc.code in _ABSENT:
            return False
        raise
    return True


def amd_shutdown() -> None:
    """Release amdsmi; never raises."""
    try:
        amd_call("amdsmi_shut_down")
    except AmdSmiError:
        logger.debug("amdsmi_shut_down failed", exc_info=True)


@dataclass(frozen=True, slots=True)
class AmdDevice:
    """One visible AMD GPU: its amdsmi handle, index in amdsmi's order and UUID."""

    handle: Any
    index: int
    uuid: str


def _identifiers(handles: Sequence[Any]) -> list[list[str]]:
    ids = []
    for handle in handles:
        names = [str(amd_call("amdsmi_get_gpu_device_uuid", handle))]
        try:
            serial = str(amd_call("amdsmi_get_gpu_asic_info", handle).get("asic_serial", ""))
        except AmdSmiError:
            serial = ""
        if serial:  # ROCr names GPUs GPU-<unique id>, the ASIC serial in hex
            names.append("GPU-" + serial.lower().removeprefix("0x"))
        ids.append(names)
    return ids


def visible_amd_gpus() -> tuple[list[AmdDevice], list[str]]:
    """The AMD GPUs this process may use (amdsmi initialised); notes on ignored entries."""
    handles = list(amd_call("amdsmi_get_processor_handles"))
    notes: list[str] = []
    order = list(range(len(handles)))
    hip_var = (
        "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in os.environ else "CUDA_VISIBLE_DEVICES"
    )
    for var in ("ROCR_VISIBLE_DEVICES", hip_var):
        current = [handles[i] for i in order]
        found = select_visible(os.environ.get(var), len(current), partial(_identifiers, current))
        if found.invalid:
            notes.append(
                f"{var} entry {found.invalid!r} matches no AMD GPU; later entries are ignored"
            )
        order = [order[i] for i in found.indices]
    devices = [
        AmdDevice(handles[i], i, str(amd_call("amdsmi_get_gpu_device_uuid", handles[i])))
        for i in order
    ]
    return devices, notes


def _counter(handle: Any) -> tuple[int, float]:
    reading = amd_call("amdsmi_get_energy_count", handle)
    return int(reading["energy_accumulator"]), float(reading["counter_resolution"])


def power_w(handle: Any) -> float:
    """Socket power in watts: ``current_socket_power``, else ``average_socket_power``.

    Raises:
        AmdSmiNotSupportedError: the GPU reports neither.
    """
    info = amd_call("amdsmi_get_power_info", handle)
    for key in ("current_socket_power", "average_socket_power"):
        value = info.get(key)
        if isinstance(value, int | float) and 0 < value < 0xFFFF:
            return float(value)
    raise AmdSmiNotSupportedError(
        "amdsmi reports no socket power for this GPU (use a counter-capable driver)"
    )


def counter_supported(device: AmdDevice) -> bool:
    """True when the GPU has a usable energy counter (supported, positive resolution)."""
    try:
        _raw, resolution_uj = _counter(device.handle)
    except AmdSmiNotSupportedError:
        return False
    return resolution_uj > 0


def counter_delta(last: int, now: int) -> int:
    """Counts between two raw accumulator values, across one wrap."""
    if now >= last:
        return now - last
    return now + (WRAP_32 if last < WRAP_32 else WRAP_64) - last


class AmdGpuSource(GpuSourceBase):
    """Energy of the visible AMD GPUs; split evenly when other metered processes share one.

    Args:
        devices: the GPUs to meter.
        mode: ``counter`` or ``power``.
        sample_hz: power sampling rate on the power path (>= 10 Hz).
        registry: registry of metered processes (``None``: no other process is known).
        pid: the process charged (default: this one).
    """

    def __init__(
        self,
        devices: Sequence[AmdDevice],
        *,
        mode: AmdMode,
        sample_hz: float = 10.0,
        registry: MeteredRegistry | None = None,
        pid: int | None = None,
    ) -> None:
        if sample_hz < 10.0:
            raise ValueError("power integration needs at least 10 Hz")
        super().__init__(registry=registry, pid=pid)
        self._devices = tuple(devices)
        self.mode: AmdMode = mode
        self.method = METHOD_AMDSMI_COUNTER if mode == "counter" else METHOD_AMDSMI_POWER
        self.devices = tuple(d.uuid for d in self._devices)
        self.sample_period_s: float | None = 1.0 / sample_hz if mode == "power" else None
        self._last_raw = [0] * len(self._devices)
        self._resolution_uj = [0.0] * len(self._devices)
        self._power_w = [0.0] * len(self._devices)
        self._fractions = [(1.0, 0.0)] * len(self._devices)
        self._last_t = self._last_wall = 0.0

    def start(self) -> None:
        """Read the baselines and probe the counter's update period; idempotent."""
        with self._lock:
            if self._started:
                return
            for i, device in enumerate(self._devices):
                if self.mode == "counter":
                    self._last_raw[i], self._resolution_uj[i] = _counter(device.handle)
                else:
                    self._power_w[i] = power_w(device.handle)
            self._last_t, self._last_wall = time.monotonic(), time.time()
            if self.mode == "counter" and self._devices:
                first = self._devices[0].handle
                measured = short_window.probe_update_period_s(lambda: _counter(first)[0])
                self.counter_period_s = short_window.assumed_period_s(measured)
                finest_j = min(r for r in self._resolution_uj) * WRAP_32 / 1e6
                self.sample_period_s = min(MAX_WATCH_PERIOD_S, finest_j / MAX_GPU_POWER_W / 2.0)
            self._started = True

    def _advance(self) -> None:
        # Caller holds the lock.
        now, wall = time.monotonic(), time.time()
        dt, self._last_t = now - self._last_t, now
        since, self._last_wall = self._last_wall, wall
        own_power_w = 0.0
        for i, device in enumerate(self._devices):
            if self.mode == "counter":
                raw, resolution_uj = _counter(device.handle)
                energy_j = counter_delta(self._last_raw[i], raw) * resolution_uj / 1e6
                if energy_j > MAX_GPU_POWER_W * max(dt, 1.0) * 2:  # a reset, not a wrap
                    energy_j = raw * resolution_uj / 1e6
                self._last_raw[i], self._resolution_uj[i] = raw, resolution_uj
            else:
                power = power_w(device.handle)
                energy_j = (self._power_w[i] + power) / 2.0 * dt
                self._power_w[i] = power
            spans = self._registry.members(device.uuid, self.pid) if self._registry else {}
            peers = len(overlapping(spans, since, wall))
            split = even_split(energy_j, peer_count=peers) if peers else whole(energy_j)
            method = METHOD_AMDSMI_EVEN_SHARE if peers else self.method
            fractions = self._tally.add(energy_j, split, method)
            if fractions is not None:
                self._fractions[i] = fractions
            own_power_w += self._power_w[i] * self._fractions[i][0]
        if self.mode == "power":
            self._peak_w = max(self._peak_w, own_power_w)

    def _power_parts(self) -> list[tuple[float, float, float]]:
        parts = []
        for i, device in enumerate(self._devices):
            try:
                self._power_w[i] = power_w(device.handle)
            except AmdSmiError:
                continue
            parts.append((self._power_w[i], *self._fractions[i]))
        return parts

    def close(self) -> None:
        """Leave the registry and release amdsmi; idempotent."""
        if self._close_once():
            amd_shutdown()


def open_amd_source(
    gpu_method: str = "auto", sample_hz: float = 10.0, *, registry: MeteredRegistry | None = None
) -> tuple[AmdGpuSource | None, list[str]]:
    """Build the AMD GPU source, or ``None`` without amdsmi, ROCm or AMD GPUs.

    Raises:
        AmdSmiNotSupportedError: ``gpu_method="counter"`` on a GPU without an energy counter.
        AmdSmiError: amdsmi is installed but fails.
    """
    if not amd_init():
        return None, []
    try:
        devices, notes = visible_amd_gpus()
        if not devices:
            amd_shutdown()
            return None, notes
        mode: AmdMode = "power" if gpu_method == "power" else "counter"
        unsupported = [d.uuid for d in devices if mode == "counter" and not counter_supported(d)]
        if unsupported and gpu_method == "counter":
            raise AmdSmiNotSupportedError(
                f"AMD GPUs {unsupported} have no usable energy counter: set "
                "CARBONLEDGER_GPU_METHOD=power or auto"
            )
        if unsupported:
            mode = "power"
            notes.append(
                f"AMD energy counter unsupported on {len(unsupported)} device(s): integrating "
                f"socket power at {sample_hz:g} Hz"
            )
        return AmdGpuSource(devices, mode=mode, sample_hz=sample_hz, registry=registry), notes
    except BaseException:
        amd_shutdown()
        raise
