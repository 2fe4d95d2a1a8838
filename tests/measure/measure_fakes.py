"""Simulated hardware for the measurement tests: a scripted ``pynvml`` behind ``FakeGpus``."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pynvml


def _now_us() -> int:
    return int(time.time() * 1e6)


class FakeGpus:
    """Scripted state behind a patched ``pynvml``: counters (mJ) and power (mW) per device.

    Per-process activity: ``push_util(i, {pid: sm_util})`` adds SM utilisation samples that
    ``nvmlDeviceGetProcessUtilization`` returns to every caller that has not seen them yet;
    ``running[i]`` lists the pids with a compute context. ``enable_mig`` turns a GPU into MIG
    instances (``MIG-…`` UUIDs with their compute slices out of 7).
    """

    def __init__(self, mock: Any, uuids: list[str], *, counter: bool = True) -> None:
        self.mock = mock
        self.uuids = uuids
        self.energy_mj = [10_000_000 + 1_000 * i for i in range(len(uuids))]
        self.power_mw = [250_000 for _ in uuids]
        self.handles = [f"handle-{i}" for i in range(len(uuids))]
        self.util: dict[str, list[tuple[int, int, int]]] = {h: [] for h in self.handles}
        self.running: dict[str, list[int]] = {h: [] for h in self.handles}
        self.per_process = True
        self.mig: dict[str, list[tuple[str, str, int]]] = {}  # parent -> (handle, uuid, slices)
        mock.nvmlDeviceGetCount.return_value = len(uuids)
        mock.nvmlDeviceGetHandleByIndex.side_effect = lambda i: self.handles[i]
        mock.nvmlDeviceGetUUID.side_effect = self._uuid
        mock.nvmlDeviceGetProcessUtilization.side_effect = self._process_util
        mock.nvmlDeviceGetComputeRunningProcesses.side_effect = lambda h: [
            SimpleNamespace(pid=p, usedGpuMemory=1 << 30) for p in self.running[h]
        ]
        mock.nvmlDeviceGetMigMode.side_effect = self._mig_mode
        mock.nvmlDeviceGetMaxMigDeviceCount.side_effect = lambda h: 7
        mock.nvmlDeviceGetMigDeviceHandleByIndex.side_effect = self._mig_handle
        mock.nvmlDeviceGetHandleByUUID.side_effect = self._by_uuid
        mock.nvmlDeviceGetDeviceHandleFromMigDeviceHandle.side_effect = self._parent
        mock.nvmlDeviceGetIndex.side_effect = lambda h: self.handles.index(h)
        mock.nvmlDeviceGetAttributes.side_effect = self._attributes
        mock.nvmlDeviceGetGpuInstanceProfileInfo.side_effect = self._profile
        mock.nvmlDeviceGetName.side_effect = lambda h: "NVIDIA A100-SXM4-40GB"
        mock.nvmlSystemGetDriverVersion.return_value = "550.54.15"
        mock.nvmlDeviceGetEnforcedPowerLimit.return_value = 400_000
        mock.nvmlDeviceGetMemoryInfo.side_effect = lambda h: type(
            "Mem", (), {"total": 40 * 2**30}
        )()
        mock.nvmlDeviceGetPowerUsage.side_effect = lambda h: self.power_mw[self.handles.index(h)]
        if counter:
            mock.nvmlDeviceGetTotalEnergyConsumption.side_effect = lambda h: self.energy_mj[
                self.handles.index(h)
            ]
        else:
            mock.nvmlDeviceGetTotalEnergyConsumption.side_effect = (
                pynvml.NVMLError_NotSupported  # pre-Volta: the counter does not exist
            )

    # --- per-process activity -------------------------------------------------------------

    def push_util(self, index: int, sm_util: dict[int, int]) -> None:
        """One SM-utilisation sample per pid, newer than anything read so far."""
        samples = self.util[self.handles[index]]
        ts = max([_now_us(), *(s[1] + 1 for s in samples)])
        samples += [(pid, ts, value) for pid, value in sm_util.items()]

    def _process_util(self, handle: str, last_seen_us: int) -> list[Any]:
        if not self.per_process:
            raise pynvml.NVMLError_NotSupported
        newer = [s for s in self.util.get(handle, []) if s[1] > last_seen_us]
        if not newer:
            raise pynvml.NVMLError_NotFound
        return [
            SimpleNamespace(pid=p, timeStamp=ts, smUtil=sm, memUtil=0, encUtil=0, decUtil=0)
            for p, ts, sm in newer
        ]

    # --- MIG ------------------------------------------------------------------------------

    def enable_mig(self, index: int, instances: list[tuple[str, int]]) -> list[str]:
        """Put GPU ``index`` in MIG mode with ``(MIG uuid, compute slices)`` instances."""
        parent = self.handles[index]
        self.mig[parent] = [(f"{parent}-mig-{k}", u, n) for k, (u, n) in enumerate(instances)]
        for handle, _, _ in self.mig[parent]:
            self.running[handle] = []
        return [h for h, _, _ in self.mig[parent]]

    def _mig_entry(self, handle: str) -> tuple[str, str, int] | None:
        for entries in self.mig.values():
            for entry in entries:
                if entry[0] == handle:
                    return entry
        return None

    def _uuid(self, handle: str) -> str:
        entry = self._mig_entry(handle)
        return entry[1] if entry else self.uuids[self.handles.index(handle)]

    def _mig_mode(self, handle: str) -> list[int]:
        if handle in self.mig:
            return [pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE]
        raise pynvml.NVMLError_NotSupported

    def _mig_handle(self, parent: str, k: int) -> str:
        entries = self.mig.get(parent, [])
        if k >= len(entries):
            raise pynvml.NVMLError_NotFound
        return entries[k][0]

    def _by_uuid(self, uuid: str) -> str:
        for entries in self.mig.values():
            for handle, mig_uuid, _ in entries:
                if mig_uuid == uuid:
                    return handle
        if uuid in self.uuids:
            return self.handles[self.uuids.index(uuid)]
        raise pynvml.NVMLError_NotFound

    def _parent(self, mig: str) -> str:
        for parent, entries in self.mig.items():
            if any(e[0] == mig for e in entries):
                return parent
        raise pynvml.NVMLError_InvalidArgument

    def _attributes(self, handle: str) -> Any:
        entry = self._mig_entry(handle)
        slices = entry[2] if entry else 7
        return SimpleNamespace(
            multiprocessorCount=16 * slices,
            computeInstanceSliceCount=slices,
            gpuInstanceSliceCount=slices,
        )

    def _profile(self, handle: str, profile: int) -> Any:
        slices = {0: 1, 1: 2, 2: 3, 3: 4, 4: 7}
        if profile not in slices:
            raise pynvml.NVMLError_NotSupported
        return SimpleNamespace(sliceCount=slices[profile])


PID_A, PID_B, PID_C = 4_100_001, 4_100_002, 4_100_003
"""Pids of processes that do not exist: process A (this one), B (another metered), C."""
