"""Device energy: NVIDIA and AMD GPUs, CPUs and RAM behind one ``Meter`` of overlapping windows.

Modules:
    base: the ``EnergySource`` protocol, ``WindowResult``/``ComponentEnergy``, ``SourceReading``.
    meter: ``Meter`` and ``Window`` (reads at window boundaries) and ``shared_meter()``.
    detect: picks the sources of each component from the settings and the machine.
    nvml: NVML calls, errors and the visible NVIDIA GPUs (``CUDA_VISIBLE_DEVICES``, MIG).
    nvml_source: the NVIDIA source (counter, or power integration before Volta; shares).
    nvml_share: per-process SM utilisation, running processes and MIG instances from NVML.
    gpu_share: splitting a shared GPU: the registry of metered processes, shares, remainder.
    amd: AMD GPUs through the optional ``amdsmi`` (counter with wraparound, or power).
    short_window: windows shorter than a counter's update period (probe, interpolation).
    visible: ``*_VISIBLE_DEVICES`` lists as CUDA and ROCm read them.
    rapl: CPU packages and DRAM from the powercap RAPL sysfs tree (wrap-safe).
    cpu_estimate: TDP x utilisation model and the shipped TDP table (``data/cpu_tdp.csv``).
    ram: 0.3725 W/GB memory estimate (Green Algorithms).
    attribution: the process tree's share of CPU time and memory (``process`` mode).
    hardware: GPU/CPU/RAM metadata for run tags.
    sampler: the one background thread, started only when a source needs sampling.

Nothing here touches NVML, amdsmi, sysfs or starts a thread at import time.
"""

from carbonledger.measure.base import (
    MEASURED_METHODS,
    METHOD_AMDSMI_COUNTER,
    METHOD_AMDSMI_EVEN_SHARE,
    METHOD_AMDSMI_POWER,
    METHOD_CPU_ESTIMATE,
    METHOD_NVML_COUNTER,
    METHOD_NVML_EVEN_SHARE,
    METHOD_NVML_MIG_SHARE,
    METHOD_NVML_POWER,
    METHOD_NVML_PROCESS_SHARE,
    METHOD_RAM_ESTIMATE,
    METHOD_RAM_RAPL,
    METHOD_RAPL,
    METHOD_SHORT_WINDOW,
    ComponentEnergy,
    EnergySource,
    SourceReading,
    WindowResult,
)
from carbonledger.measure.detect import detect_sources
from carbonledger.measure.hardware import GpuInfo, HardwareInfo, describe_hardware
from carbonledger.measure.meter import Meter, Window, shared_meter

__all__ = [
    "MEASURED_METHODS",
    "METHOD_AMDSMI_COUNTER",
    "METHOD_AMDSMI_EVEN_SHARE",
    "METHOD_AMDSMI_POWER",
    "METHOD_CPU_ESTIMATE",
    "METHOD_NVML_COUNTER",
    "METHOD_NVML_EVEN_SHARE",
    "METHOD_NVML_MIG_SHARE",
    "METHOD_NVML_POWER",
    "METHOD_NVML_PROCESS_SHARE",
    "METHOD_RAM_ESTIMATE",
    "METHOD_RAM_RAPL",
    "METHOD_RAPL",
    "METHOD_SHORT_WINDOW",
    "ComponentEnergy",
    "EnergySource",
    "GpuInfo",
    "HardwareInfo",
    "Meter",
    "SourceReading",
    "Window",
    "WindowResult",
    "describe_hardware",
    "detect_sources",
    "shared_meter",
]
