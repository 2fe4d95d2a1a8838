"""NVIDIA GPUs through NVML (nvidia-ml-py): calls, errors, and the devices this process may use.

``nvml_call`` is the one way carbonledger calls NVML: errors are translated once, through
``_ERROR_MAP``, into ``NvmlError`` subclasses whose messages name the fix. ``visible_gpus``
applies ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUIDs and ``MIG-`` instance UUIDs) and tells
which GPUs are in MIG mode. The energy source itself lives in ``nvml_source``; per-process
activity and MIG instances in ``nvml_share``. Nothing here touches NVML at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from carbonledger.errors import NvmlError, NvmlNotSupportedError
from carbonledger.measure.visible import select_visible

try:  # nvidia-ml-py is a dependency, but a broken install must not break import
    import pynvml
except ImportError:  # pragma: no cover - exercised only without the wheel
    pynvml = None

logger = logging.getLogger(__name__)

# Real exception class, codes and constants, captured at import so tests that patch ``pynvml``
# with ``autospec=True`` still raise and catch the genuine NVML exceptions.
_NVMLError: type[Exception] = pynvml.NVMLError if pynvml is not None else OSError
_ABSENT_CODES = frozenset(
    getattr(pynvml, name, -1)
    for name in ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_DRIVER_NOT_LOADED")
)
_MIG_ENABLE: int = getattr(pynvml, "NVML_DEVICE_MIG_ENABLE", 1)
GPU_INSTANCE_PROFILE_COUNT: int = getattr(pynvml, "NVML_GPU_INSTANCE_PROFILE_COUNT", 0x12)
NOT_FOUND: int = getattr(pynvml, "NVML_ERROR_NOT_FOUND", 6)
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
    getattr(pynvml, "NVML_ERROR_FUNCTION_NOT_FOUND", 13): (
        NvmlNotSupportedError,
        "the NVIDIA driver is older than this query; update the driver",
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


def text(value: Any) -> str:
    """An NVML string (bytes in older nvidia-ml-py versions) as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class VisibleSelection:
    """What ``CUDA_VISIBLE_DEVICES`` selects.

    Attributes:
        indices: physical GPU indices, in CUDA's order.
        mig_uuids: ``MIG-`` instance UUIDs named explicitly (their GPUs are resolved later).
        notes: why entries were ignored.
    """

    indices: list[int]
    mig_uuids: list[str]
    notes: list[str]


def parse_visible_devices(
    env: str | None, count: int, uuid_of: Callable[[int], str]
) -> VisibleSelection:
    """Physical indices and MIG instances selected by ``CUDA_VISIBLE_DEVICES``, with notes.

    Like CUDA: unset means all devices, an empty value means none, entries are indices,
    (unique prefixes of) ``GPU-`` UUIDs or ``MIG-`` instance UUIDs, and the list stops at the
    first invalid entry.
    """

    def is_mig(entry: str) -> bool:
        return entry.upper().startswith("MIG-") and "/" not in entry

    def uuids() -> list[list[str]]:
        return [[uuid_of(i)] for i in range(count)]

    found = select_visible(env, count, uuids, keep=is_mig)
    notes: list[str] = []
    if found.invalid:
        note = f"CUDA_VISIBLE_DEVICES entry {found.invalid!r} matches no GPU"
        if found.invalid.upper().startswith("MIG-"):
            note = (
                f"MIG entry {found.invalid!r} uses the old MIG-GPU-<uuid>/<gi>/<ci> form: name "
                "the instance by its MIG-<uuid> (nvidia-smi -L)"
            )
        notes.append(f"{note}; later entries are ignored, as CUDA does")
    return VisibleSelection(found.indices, found.kept, notes)


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One visible physical GPU: NVML handle, index, UUID, and its MIG state.

    Attributes:
        handle: the NVML handle of the physical GPU.
        index: its NVML index.
        uuid: its ``GPU-`` UUID.
        mig: True when the GPU is in MIG mode (its energy is split by instance).
        mig_selected: ``MIG-`` UUIDs of its instances that ``CUDA_VISIBLE_DEVICES`` names.
    """

    handle: Any
    index: int
    uuid: str
    mig: bool = False
    mig_selected: tuple[str, ...] = ()


def mig_enabled(handle: Any) -> bool:
    """True when the GPU's current MIG mode is enabled (False where MIG does not exist)."""
    try:
        mode = nvml_call("nvmlDeviceGetMigMode", handle)
    except NvmlError:
        return False  # not MIG-capable (pre-Ampere, consumer boards) or not reported
    current = mode[0] if isinstance(mode, list | tuple) and mode else None
    return isinstance(current, int) and current == _MIG_ENABLE


def _mig_parent_index(mig_uuid: str) -> int | None:
    try:
        mig = nvml_call("nvmlDeviceGetHandleByUUID", mig_uuid)
        parent = nvml_call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", mig)
        index = nvml_call("nvmlDeviceGetIndex", parent)
    except NvmlError:
        return None
    return index if isinstance(index, int) else None


def visible_gpus() -> tuple[list[GpuDevice], list[str]]:
    """The GPUs this process may use (NVML must be initialised); notes on ignored entries.

    A ``MIG-`` entry selects its physical GPU, with only that instance charged to the process.
    """
    count = int(nvml_call("nvmlDeviceGetCount"))

    def uuid_of(i: int) -> str:
        return text(nvml_call("nvmlDeviceGetUUID", nvml_call("nvmlDeviceGetHandleByIndex", i)))

    selection = parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"), count, uuid_of)
    notes = list(selection.notes)
    indices = list(selection.indices)
    selected: dict[int, list[str]] = {}
    for mig_uuid in selection.mig_uuids:
        parent = _mig_parent_index(mig_uuid)
        if parent is None:
            notes.append(f"MIG instance {mig_uuid!r} matches no MIG device: not metered")
            continue
        selected.setdefault(parent, []).append(mig_uuid)
        if parent not in indices:
            indices.append(parent)
    devices = []
    for i in indices:
        handle = nvml_call("nvmlDeviceGetHandleByIndex", i)
        uuid = text(nvml_call("nvmlDeviceGetUUID", handle))
        migs = tuple(selected.get(i, ()))
        on = mig_enabled(handle)
        if migs and not on:
            notes.append(f"GPU {uuid} is not in MIG mode: {', '.join(migs)} ignored")
            migs = ()
        devices.append(GpuDevice(handle, i, uuid, mig=on, mig_selected=migs))
    return devices, notes


def counter_supported(device: GpuDevice) -> bool:
    """True when the device has the NVML total-energy counter (Volta and newer)."""
    try:
        nvml_call("nvmlDeviceGetTotalEnergyConsumption", device.handle)
    except NvmlNotSupportedError:
        return False
    return True
