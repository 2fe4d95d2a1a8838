"""What hardware a job runs on: GPU and CPU models, counts and memory (for run tags).

GPUs are the visible NVIDIA GPUs (NVML) followed by the visible AMD GPUs (amdsmi, when it
loads); each gives its name, UUID, driver version, power limit and memory. Beside them, what
the job reserved of its host (:mod:`carbonledger.measure.host`): GPUs present on the host, CPUs
the process may use, the cloud instance type and the machine model.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from carbonledger.contract import (
    TAG_CPU_COUNT,
    TAG_CPU_COUNT_USED,
    TAG_CPU_MODEL,
    TAG_GPU_COUNT,
    TAG_GPU_COUNT_HOST,
    TAG_GPU_MODEL,
    TAG_HOST_MODEL,
    TAG_INSTANCE_TYPE,
    TAG_INSTANCE_TYPE_SOURCE,
    TAG_RAM_GB,
)
from carbonledger.errors import AmdSmiError, NvmlError
from carbonledger.measure import amd, nvml
from carbonledger.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU: model name, UUID, driver version, power limit (W) and memory (GB, 2**30 B)."""

    name: str
    uuid: str
    driver_version: str | None = None
    power_limit_w: float | None = None
    memory_gb: float | None = None


@dataclass(frozen=True, slots=True)
class HardwareInfo:
    """The devices a job can use.

    Attributes:
        gpu_model: model of the first visible GPU (``None`` without GPUs).
        gpu_count: number of visible GPUs.
        gpus: each visible GPU.
        cpu_model: CPU model string as the OS reports it.
        cpu_count: logical CPUs of the host.
        ram_gb: installed memory in GB (2**30 bytes).
        gpu_count_host: GPUs present on the host, visible or not (None: unknown).
        cpu_count_used: logical CPUs this process may use (None: unknown).
        instance_type: cloud instance type (None: unknown).
        instance_type_source: ``setting`` or ``dmi``.
        host_model: the machine's model (DMI ``product_name``), when it names one.
    """

    gpu_model: str | None
    gpu_count: int
    gpus: tuple[GpuInfo, ...]
    cpu_model: str | None
    cpu_count: int
    ram_gb: float
    gpu_count_host: int | None = None
    cpu_count_used: int | None = None
    instance_type: str | None = None
    instance_type_source: str | None = None
    host_model: str | None = None

    def as_tags(self) -> dict[str, str]:
        """The ``carbon.*`` hardware tags of a run (unknown host facts are left out)."""
        tags = {
            TAG_GPU_MODEL: self.gpu_model or "none",
            TAG_GPU_COUNT: str(self.gpu_count),
            TAG_CPU_MODEL: self.cpu_model or "unknown",
            TAG_CPU_COUNT: str(self.cpu_count),
            TAG_RAM_GB: f"{self.ram_gb:.1f}",
        }
        optional = {
            TAG_GPU_COUNT_HOST: self.gpu_count_host,
            TAG_CPU_COUNT_USED: self.cpu_count_used,
            TAG_INSTANCE_TYPE: self.instance_type,
            TAG_INSTANCE_TYPE_SOURCE: self.instance_type_source,
            TAG_HOST_MODEL: self.host_model,
        }
        tags.update({k: str(v) for k, v in optional.items() if v is not None})
        return tags


@lru_cache(maxsize=1)
def cpu_model_name() -> str | None:
    """The CPU model string (``model name`` of /proc/cpuinfo, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _optional(name: str, *args: Any) -> Any:
    try:
        return nvml.nvml_call(name, *args)
    except NvmlError:  # a missing detail (e.g. power limit on a vGPU) is not fatal
        return None


def gpu_infos() -> tuple[GpuInfo, ...]:
    """Metadata of the visible GPUs; empty without NVML or GPUs, never raises NVML errors."""
    return _nvidia_gpus()[0]


def _nvidia_gpus() -> tuple[tuple[GpuInfo, ...], int | None]:
    """The visible NVIDIA GPUs and how many the host has (None when NVML fails)."""
    try:
        if not nvml.nvml_init():
            return (), 0
    except NvmlError as exc:
        logger.warning("cannot read GPU metadata: %s", exc)
        return (), None
    try:
        present = _optional("nvmlDeviceGetCount")
        devices, _ = nvml.visible_gpus()
        driver = _optional("nvmlSystemGetDriverVersion")
        infos = []
        for d in devices:
            limit_mw = _optional("nvmlDeviceGetEnforcedPowerLimit", d.handle)
            memory = _optional("nvmlDeviceGetMemoryInfo", d.handle)
            infos.append(
                GpuInfo(
                    name=nvml.text(nvml.nvml_call("nvmlDeviceGetName", d.handle)),
                    uuid=d.uuid,
                    driver_version=nvml.text(driver) if driver is not None else None,
                    power_limit_w=float(limit_mw) / 1e3 if limit_mw is not None else None,
                    memory_gb=float(memory.total) / 2**30 if memory is not None else None,
                )
            )
        return tuple(infos), int(present) if isinstance(present, int) else None
    except NvmlError as exc:
        logger.warning("cannot read GPU metadata: %s", exc)
        return (), None
    finally:
        nvml.nvml_shutdown()


def _amd_optional(name: str, *args: Any) -> Any:
    try:
        return amd.amd_call(name, *args)
    except AmdSmiError:  # a missing detail (power cap in a VM guest) is not fatal
        return None


def amd_gpu_infos() -> tuple[GpuInfo, ...]:
    """Metadata of the visible AMD GPUs; empty without amdsmi or GPUs, never raises."""
    return _amd_gpus()[0]


def _amd_gpus() -> tuple[tuple[GpuInfo, ...], int | None]:
    """The visible AMD GPUs and how many the host has (None when amdsmi fails)."""
    try:
        if not amd.amd_init():
            return (), 0
    except AmdSmiError as exc:
        logger.warning("cannot read AMD GPU metadata: %s", exc)
        return (), None
    try:
        handles = _amd_optional("amdsmi_get_processor_handles")
        devices, _ = amd.visible_amd_gpus()
        vram_type = amd.load_amdsmi().AmdSmiMemoryType.VRAM  # loaded: amd_init succeeded
        infos = []
        for d in devices:
            asic = _amd_optional("amdsmi_get_gpu_asic_info", d.handle) or {}
            driver = _amd_optional("amdsmi_get_gpu_driver_info", d.handle) or {}
            cap = _amd_optional("amdsmi_get_power_cap_info", d.handle) or {}
            vram = _amd_optional("amdsmi_get_gpu_memory_total", d.handle, vram_type)
            cap_uw = cap.get("power_cap")
            infos.append(
                GpuInfo(
                    name=str(asic.get("market_name") or "AMD GPU"),
                    uuid=d.uuid,
                    driver_version=_known(driver.get("driver_version")),
                    power_limit_w=float(cap_uw) / 1e6 if isinstance(cap_uw, int | float) else None,
                    memory_gb=float(vram) / 2**30 if isinstance(vram, int | float) else None,
                )
            )
        return tuple(infos), len(handles) if isinstance(handles, list | tuple) else None
    except AmdSmiError as exc:
        logger.warning("cannot read AMD GPU metadata: %s", exc)
        return (), None
    finally:
        amd.amd_shutdown()


def _known(value: Any) -> str | None:
    return str(value) if value not in (None, "", "N/A") else None


def _present(visible: int, present: int | None) -> int | None:
    # A vendor whose library failed reports None: the host's count is then unknown.
    return None if present is None else max(present, visible)


def describe_hardware(settings: Settings | None = None) -> HardwareInfo:
    """Describe the GPUs, CPU and memory this process can use, and what the host has.

    Probes NVML, amdsmi and psutil, and reads the DMI files and the CPU affinity and quota
    (:mod:`carbonledger.measure.host`); none of these makes a network call.
    """
    import psutil

    from carbonledger.measure.host import cpus_used, describe_host
    from carbonledger.measure.ram import BYTES_PER_GB

    s = settings or get_settings()
    nvidia, nvidia_present = _nvidia_gpus()
    amd_gpus, amd_present = _amd_gpus()
    gpus = nvidia + amd_gpus
    a, b = _present(len(nvidia), nvidia_present), _present(len(amd_gpus), amd_present)
    host = describe_host(dmi_root=s.dmi_root, instance_type=s.instance_type)
    return HardwareInfo(
        gpu_model=gpus[0].name if gpus else None,
        gpu_count=len(gpus),
        gpus=gpus,
        cpu_model=cpu_model_name(),
        cpu_count=psutil.cpu_count(logical=True) or 1,
        ram_gb=psutil.virtual_memory().total / BYTES_PER_GB,
        gpu_count_host=None if a is None or b is None else a + b,
        cpu_count_used=cpus_used(),
        instance_type=host.instance_type,
        instance_type_source=host.instance_type_source,
        host_model=host.host_model,
    )
