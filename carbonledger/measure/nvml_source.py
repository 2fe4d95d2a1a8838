"""The NVIDIA GPU energy source: counters or power integration, split when a GPU is shared.

Per device and per interval (a sampler tick or a window read), the device's energy is the
counter delta (Volta and newer, ``nvmlDeviceGetTotalEnergyConsumption``, mJ) or the trapezoid
integral of ``nvmlDeviceGetPowerUsage`` (mW) sampled at >= 10 Hz where the counter does not
exist. That energy is then charged, by ``gpu_share.split_device``:

* **whole** (``nvml-energy-counter`` / ``nvml-power-integration``) in ``device`` attribution on
  a GPU that no other metered process uses (today's figure);
* **by SM utilisation** (``nvml-process-share``) in ``process`` attribution, or in ``device``
  attribution when another metered process is registered on the GPU; evenly among the
  processes on it (``nvml-even-share``) where the driver has no per-process samples;
* **by MIG slice** (``nvml-mig-share``) on a GPU in MIG mode, whatever the attribution.

A window shorter than the counter's update period (probed at ``start``) is charged from a
fresh power reading instead (``short_window``). Nothing here touches NVML at import time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from carbonledger.errors import NvmlError, NvmlNotSupportedError
from carbonledger.measure import nvml, nvml_share, short_window
from carbonledger.measure.base import (
    METHOD_NVML_COUNTER,
    METHOD_NVML_EVEN_SHARE,
    METHOD_NVML_MIG_SHARE,
    METHOD_NVML_POWER,
    METHOD_NVML_PROCESS_SHARE,
    Attribution,
)
from carbonledger.measure.gpu_base import GpuSourceBase
from carbonledger.measure.gpu_registry import MeteredRegistry, Spans, overlapping
from carbonledger.measure.gpu_share import (
    ProcessClassifier,
    Split,
    Unit,
    in_host_pid_namespace,
    split_device,
    whole,
)
from carbonledger.measure.nvml import GpuDevice

logger = logging.getLogger(__name__)

GpuMode = Literal["counter", "power"]
SHARE_PERIOD_S = 1.0
"""Sampler period of a source that may split its GPUs (per-process samples, registry)."""


@dataclass
class _DeviceState:
    gpu: GpuDevice
    last_mj: int = 0
    power_w: float = 0.0
    activity: nvml_share.ProcessActivity | None = None
    instances: list[nvml_share.MigInstance] = field(default_factory=list)
    # own and reported-remainder fractions of the last interval with energy (short windows)
    own_fraction: float = 1.0
    remainder_fraction: float = 0.0


class NvmlGpuSource(GpuSourceBase):
    """Energy of the visible NVIDIA GPUs charged to this process.

    Args:
        devices: the physical GPUs to meter.
        mode: ``counter`` (energy counter deltas) or ``power`` (integrate sampled power).
        sample_hz: power sampling rate on the power path (>= 10 Hz).
        owns_nvml: release one NVML reference at ``close``.
        attribution: ``device`` (whole GPUs unless another metered process shares one) or
            ``process`` (always this process's share by SM utilisation).
        registry: the registry of metered processes (``None``: no other process is known).
        pid: the process charged (default: this one).
        share_period_s: sampler period when GPUs may be split.
    """

    def __init__(
        self,
        devices: Sequence[GpuDevice],
        *,
        mode: GpuMode,
        sample_hz: float = 10.0,
        owns_nvml: bool = True,
        attribution: Attribution = "device",
        registry: MeteredRegistry | None = None,
        pid: int | None = None,
        share_period_s: float = SHARE_PERIOD_S,
    ) -> None:
        if sample_hz < 10.0:
            raise ValueError("power integration needs at least 10 Hz")
        super().__init__(registry=registry, pid=pid)
        self._states = [_DeviceState(d) for d in devices]
        self.mode: GpuMode = mode
        self.method = METHOD_NVML_COUNTER if mode == "counter" else METHOD_NVML_POWER
        self.devices = tuple(d.uuid for d in devices)
        self.attribution: Attribution = attribution
        # Per-process splits need NVML's pids to be ours (false inside a PID namespace).
        self._splits = attribution == "process" or registry is not None
        self._pids_match = True
        if mode == "power":
            self.sample_period_s: float | None = 1.0 / sample_hz
        else:
            self.sample_period_s = share_period_s if self._splits else None
        self._owns_nvml = owns_nvml
        self._last_t = 0.0
        self._last_wall = 0.0
        self._needs_pids = self._splits or any(d.mig for d in devices)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Read the baselines, probe the counter period and per-process support; idempotent."""
        with self._lock:
            if self._started:
                return
            for state in self._states:
                if self.mode == "counter":
                    state.last_mj = self._read_mj(state)
                else:
                    state.power_w = self._read_power_w(state)
            self._last_t, self._last_wall = time.monotonic(), time.time()
            if self.mode == "counter" and self._states:
                first = self._states[0]
                measured = short_window.probe_update_period_s(lambda: self._read_mj(first))
                self.counter_period_s = short_window.assumed_period_s(measured)
            self._prepare_sharing()
            self._started = True

    def _prepare_sharing(self) -> None:
        self._pids_match = in_host_pid_namespace()
        if self._splits and not self._pids_match:
            self._splits = False
            self.notes.append(
                "this process runs in its own PID namespace (a container): NVML's process IDs "
                "cannot be matched with it, so shared GPUs are charged whole; run the "
                "container with --pid=host to split them"
            )
        for state in self._states:
            gpu = state.gpu
            if gpu.mig:
                state.instances, notes = nvml_share.mig_instances(gpu.handle)
                self.notes += [f"GPU {gpu.uuid}: {n}" for n in notes]
                state.own_fraction = sum(
                    i.fraction for i in state.instances if self._held(state, i)
                )
                continue
            if not self._splits:
                continue
            state.activity = nvml_share.ProcessActivity(gpu.handle)
            kind = state.activity.start()
            if kind == "even":
                self.notes.append(
                    f"GPU {gpu.uuid}: the driver gives no per-process utilisation (older "
                    "driver): a shared GPU is split evenly among the processes on it "
                    f"({METHOD_NVML_EVEN_SHARE})"
                )
            elif kind == "none":
                self.notes.append(
                    f"GPU {gpu.uuid}: the driver lists no processes: it is charged whole "
                    "even when shared (update the NVIDIA driver to split it)"
                )

    def close(self) -> None:
        """Leave the registry and release NVML; idempotent."""
        if self._close_once() and self._owns_nvml:
            nvml.nvml_shutdown()

    # --- reads ---------------------------------------------------------------------------------

    def _read_mj(self, state: _DeviceState) -> int:
        return int(nvml.nvml_call("nvmlDeviceGetTotalEnergyConsumption", state.gpu.handle))

    def _read_power_w(self, state: _DeviceState) -> float:
        return float(nvml.nvml_call("nvmlDeviceGetPowerUsage", state.gpu.handle)) / 1e3

    def _advance(self) -> None:
        # Caller holds the lock.
        now, wall = time.monotonic(), time.time()
        dt, self._last_t = now - self._last_t, now
        since, self._last_wall = self._last_wall, wall
        spans = self._registry_spans()
        own_power_w = 0.0
        for state in self._states:
            if self.mode == "counter":
                now_mj = self._read_mj(state)
                delta_mj = now_mj - state.last_mj
                # A counter that goes back means a driver reload: count from its new origin.
                energy_j = (delta_mj if delta_mj >= 0 else now_mj) / 1e3
                state.last_mj = now_mj
            else:
                power_w = self._read_power_w(state)
                energy_j = (state.power_w + power_w) / 2.0 * dt
                state.power_w = power_w
            device_spans = spans.get(state.gpu.uuid, {})
            peers = overlapping(device_spans, since, wall)
            classifier = (
                ProcessClassifier(self.pid, device_spans, since_s=since, until_s=wall)
                if self._needs_pids
                else None
            )
            split, method = self._split(state, energy_j, classifier, len(peers))
            fractions = self._tally.add(energy_j, split, method)
            if fractions is not None:
                state.own_fraction, state.remainder_fraction = fractions
            own_power_w += state.power_w * state.own_fraction
        if self.mode == "power":
            self._peak_w = max(self._peak_w, own_power_w)

    def _registry_spans(self) -> dict[str, Spans]:
        """Per device, the other processes metering it now or lately (empty without registry)."""
        if self._registry is None or not self._splits:
            return {}
        return {d: self._registry.members(d, self.pid) for d in self.devices}

    def _split(
        self,
        state: _DeviceState,
        energy_j: float,
        classifier: ProcessClassifier | None,
        peer_count: int,
    ) -> tuple[Split, str]:
        alone = self.attribution == "device" and peer_count == 0
        if state.gpu.mig and classifier is not None:
            units = self._mig_units(state, classifier, alone=alone)
            return split_device(energy_j, units, peer_count=peer_count), METHOD_NVML_MIG_SHARE
        if state.activity is None or classifier is None:
            return whole(energy_j), self.method
        samples = state.activity.samples()  # every tick, so samples never pile up
        if samples is None or alone:
            return whole(energy_j), self.method
        split = split_device(energy_j, [classifier.unit(1.0, samples)], peer_count=peer_count)
        kind = METHOD_NVML_PROCESS_SHARE if state.activity.kind == "sm" else METHOD_NVML_EVEN_SHARE
        return split, kind

    def _mig_units(
        self, state: _DeviceState, classifier: ProcessClassifier, *, alone: bool
    ) -> list[Unit]:
        units = []
        for inst in state.instances:
            held = self._held(state, inst)
            samples: list[nvml_share.Sample] = []
            if self._pids_match:
                try:
                    samples = nvml_share.present(inst.handle)
                except NvmlError as exc:
                    logger.debug("processes of MIG instance %s unknown: %s", inst.uuid, exc)
            unit = classifier.unit(inst.fraction, samples, held=held)
            if alone:  # device attribution, no other metered process: the slice is this one's
                unit = Unit(unit.fraction, unit.own_w, held=unit.held)
            units.append(unit)
        return units

    def _held(self, state: _DeviceState, inst: nvml_share.MigInstance) -> bool:
        """Whether this process holds a MIG instance whatever NVML's process list says."""
        if state.gpu.mig_selected:
            return inst.uuid in state.gpu.mig_selected
        # Without matching pids (a container), the one instance NVML shows is this one's.
        return len(state.instances) == 1 and not self._pids_match

    def _power_parts(self) -> list[tuple[float, float, float]]:
        parts = []
        for state in self._states:
            try:
                state.power_w = self._read_power_w(state)
            except NvmlError:
                continue  # power unreadable: this GPU adds nothing to a short window
            parts.append((state.power_w, state.own_fraction, state.remainder_fraction))
        return parts


def open_gpu_source(
    gpu_method: str = "auto",
    sample_hz: float = 10.0,
    *,
    attribution: Attribution = "device",
    registry: MeteredRegistry | None = None,
) -> tuple[NvmlGpuSource | None, list[str]]:
    """Build the GPU source for this process, or ``None`` when there is no NVML or no GPU.

    Args:
        gpu_method: ``auto``, ``counter`` or ``power``.
        sample_hz: power sampling rate on the power path.
        attribution: ``device`` or ``process`` (see ``NvmlGpuSource``).
        registry: registry of metered processes; ``None`` knows of no other process.

    Raises:
        NvmlNotSupportedError: ``gpu_method="counter"`` on a GPU without an energy counter.
        NvmlError: NVML is installed but fails.
    """
    if not nvml.nvml_init():
        return None, []
    try:
        devices, notes = nvml.visible_gpus()
        if not devices:
            nvml.nvml_shutdown()
            return None, notes
        mode: GpuMode = "power" if gpu_method == "power" else "counter"
        if mode == "counter":
            unsupported = [d.uuid for d in devices if not nvml.counter_supported(d)]
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
        source = NvmlGpuSource(
            devices, mode=mode, sample_hz=sample_hz, attribution=attribution, registry=registry
        )
        return source, notes
    except BaseException:
        nvml.nvml_shutdown()
        raise
