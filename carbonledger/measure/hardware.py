"""What hardware a job runs on: GPU and CPU models, counts and memory (for run tags)."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from carbonledger.errors import NvmlError
from carbonledger.measure import nvml
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
        cpu_count: logical CPUs.
        ram_gb: installed memory in GB (2**30 bytes).
    """

    gpu_model: str | None
    gpu_count: int
    gpus: tuple[GpuInfo, ...]
    cpu_model: str | None
    cpu_count: int
    ram_gb: float

    def as_tags(self) -> dict[str, str]:
        """The ``carbon.*`` hardware tags of a run."""
        return {
            "carbon.gpu_model": self.gpu_model or "none",
            "carbon.gpu_count": str(self.gpu_count),
            "carbon.cpu_model": self.cpu_model or "unknown",
            "carbon.cpu_count": str(self.cpu_count),
            "carbon.ram_gb": f"{self.ram_gb:.1f}",
        }


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
    try:
        if not nvml.nvml_init():
            return ()
    except NvmlError as exc:
        logger.warning("cannot read GPU metadata: %s", exc)
        return ()
    try:
        devices, _ = nvml.visible_gpus()
        driver = _optional("nvmlSystemGetDriverVersion")
        infos = []
        for d in devices:
            limit_mw = _optional("nvmlDeviceGetEnforcedPowerLimit", d.handle)
            memory = _optional("nvmlDeviceGetMemoryInfo", d.handle)
            infos.append(
                GpuInfo(
                    name=nvml._text(nvml.nvml_call("nvmlDeviceGetName", d.handle)),
                    uuid=d.uuid,
                    driver_version=nvml._text(driver) if driver is not None else None,
                    power_limit_w=float(limit_mw) / 1e3 if limit_mw is not None else None,
                    memory_gb=float(memory.total) / 2**30 if memory is not None else None,
                )
            )
        return tuple(infos)
    except NvmlError as exc:
        logger.warning("cannot read GPU metadata: %s", exc)
        return ()
    finally:
        nvml.nvml_shutdown()


def describe_hardware(settings: Settings | None = None) -> HardwareInfo:
    """Describe the GPUs, CPU and memory this process can use (probes NVML and psutil)."""
    import psutil

    from carbonledger.measure.ram import BYTES_PER_GB

    _ = settings or get_settings()  # reserved: settings may later restrict devices
    gpus = gpu_infos()
    return HardwareInfo(
        gpu_model=gpus[0].name if gpus else None,
        gpu_count=len(gpus),
        gpus=gpus,
        cpu_model=cpu_model_name(),
        cpu_count=psutil.cpu_count(logical=True) or 1,
        ram_gb=psutil.virtual_memory().total / BYTES_PER_GB,
    )
