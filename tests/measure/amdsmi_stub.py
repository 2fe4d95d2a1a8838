"""The part of ``amdsmi`` (7.0.2) that carbonledger calls, with the real signatures.

``amdsmi`` cannot be imported without ROCm's ``libamd_smi.so`` (its wrapper raises at import),
so the tests patch ``carbonledger.measure.amd.amdsmi`` with ``autospec=amdsmi_stub``: calls
with the wrong arguments fail as they would against the real module. The bodies are never
run; return shapes are documented as amdsmi 7 returns them (dicts of plain values).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1
    INIT_NON_AMD_CPUS = 1 << 2
    INIT_NON_AMD_GPUS = 1 << 3
    INIT_AMD_APUS = (1 << 0) | (1 << 1)


class AmdSmiMemoryType(IntEnum):
    VRAM = 0
    VIS_VRAM = 1
    GTT = 2


class AmdSmiException(Exception):
    """Base smi exception class."""


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code


def amdsmi_init(flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
    raise NotImplementedError


def amdsmi_shut_down() -> None:
    raise NotImplementedError


def amdsmi_get_processor_handles() -> list[Any]:
    raise NotImplementedError


def amdsmi_get_gpu_device_uuid(processor_handle: Any) -> str:
    raise NotImplementedError


def amdsmi_get_gpu_asic_info(processor_handle: Any) -> dict[str, Any]:
    """``market_name``, ``vendor_id``, ``device_id``, ``asic_serial`` (hex string) …"""
    raise NotImplementedError


def amdsmi_get_gpu_driver_info(processor_handle: Any) -> dict[str, Any]:
    """``driver_name``, ``driver_version``, ``driver_date`` ("N/A" when empty)."""
    raise NotImplementedError


def amdsmi_get_power_cap_info(processor_handle: Any) -> dict[str, Any]:
    """``power_cap``, ``default_power_cap``, ``min_power_cap``, ``max_power_cap`` in µW."""
    raise NotImplementedError


def amdsmi_get_gpu_memory_total(processor_handle: Any, mem_type: AmdSmiMemoryType) -> int:
    """Bytes."""
    raise NotImplementedError


def amdsmi_get_energy_count(processor_handle: Any) -> dict[str, Any]:
    """``energy_accumulator`` (counts), ``counter_resolution`` (µJ per count), ``timestamp``."""
    raise NotImplementedError


def amdsmi_get_power_info(processor_handle: Any) -> dict[str, Any]:
    """``current_socket_power``, ``average_socket_power`` (W; "N/A" when absent) …"""
    raise NotImplementedError
