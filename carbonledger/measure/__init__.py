"""Device energy: NVIDIA GPUs, CPUs and RAM behind one ``Meter`` of overlapping windows.

Modules:
    base: the ``EnergySource`` protocol, ``WindowResult``/``ComponentEnergy`` and method names.
    meter: ``Meter`` and ``Window`` (reads at window boundaries) and ``shared_meter()``.
    detect: picks one source per component from the settings and the machine.
    nvml: NVIDIA GPUs (energy counter, or power integration before Volta).
    rapl: CPU packages and DRAM from the powercap RAPL sysfs tree (wrap-safe).
    cpu_estimate: TDP x utilisation model and the shipped TDP table (``data/cpu_tdp.csv``).
    ram: 0.3725 W/GB memory estimate (Green Algorithms).
    attribution: the process tree's share of CPU time and memory (``process`` mode).
    hardware: GPU/CPU/RAM metadata for run tags.
    sampler: the one background thread, started only when a source needs sampling.

Nothing here touches NVML, sysfs or starts a thread at import time.
"""

from carbonledger.measure.base import (
    MEASURED_METHODS,
    METHOD_CPU_ESTIMATE,
    METHOD_NVML_COUNTER,
    METHOD_NVML_POWER,
    METHOD_RAM_ESTIMATE,
    METHOD_RAM_RAPL,
    METHOD_RAPL,
    ComponentEnergy,
    EnergySource,
    WindowResult,
)
from carbonledger.measure.detect import detect_sources
from carbonledger.measure.hardware import GpuInfo, HardwareInfo, describe_hardware
from carbonledger.measure.meter import Meter, Window, shared_meter

__all__ = [
    "MEASURED_METHODS",
    "METHOD_CPU_ESTIMATE",
    "METHOD_NVML_COUNTER",
    "METHOD_NVML_POWER",
    "METHOD_RAM_ESTIMATE",
    "METHOD_RAM_RAPL",
    "METHOD_RAPL",
    "ComponentEnergy",
    "EnergySource",
    "GpuInfo",
    "HardwareInfo",
    "Meter",
    "Window",
    "WindowResult",
    "describe_hardware",
    "detect_sources",
    "shared_meter",
]
