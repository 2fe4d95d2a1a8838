"""Fixtures for the measurement tests: fresh module state, fake NVML and powercap trees."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from carbonledger.measure import amd, detect, gpu_registry, gpu_share, meter, short_window
from carbonledger.settings import get_settings

VISIBLE_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
)


@pytest.fixture(autouse=True)
def _fresh_measure_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No shared meter, RAPL warning or amdsmi import leaks between tests; no *_VISIBLE_DEVICES.

    The GPU share registry is a private folder, and the counter-period probe is skipped
    (tests of short windows turn it back on): scripted counters do not tick by themselves.
    """
    for var in VISIBLE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CARBONLEDGER_GPU_SHARE_DIR", str(tmp_path / "_gpu_share"))
    get_settings.cache_clear()
    monkeypatch.setattr(short_window, "PROBE_BUDGET_S", 0.0)
    meter.reset_shared_meter()
    detect.reset_warnings()
    amd.reset_amdsmi()
    opened: list[meter.Meter] = []
    real_init = meter.Meter.__init__

    def tracked_init(self: meter.Meter, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(meter.Meter, "__init__", tracked_init)
    yield
    for m in opened:  # no sampler thread outlives its test
        m.close()
    meter.reset_shared_meter()
    detect.reset_warnings()
    amd.reset_amdsmi()


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


UUIDS = [
    "GPU-aaaaaaaa-1111-2222-3333-444444444444",
    "GPU-bbbbbbbb-1111-2222-3333-444444444444",
    "GPU-cccccccc-1111-2222-3333-444444444444",
]


@pytest.fixture
def nvml_mock(mocker: Any) -> Any:
    """``pynvml`` patched where carbonledger uses it, with ``autospec=True``."""
    return mocker.patch("carbonledger.measure.nvml.pynvml", autospec=True)


@pytest.fixture
def gpus(nvml_mock: Any) -> FakeGpus:
    """Three Volta-or-newer GPUs with energy counters."""
    return FakeGpus(nvml_mock, list(UUIDS))


@pytest.fixture
def one_gpu(nvml_mock: Any) -> FakeGpus:
    """One Volta-or-newer GPU with an energy counter."""
    return FakeGpus(nvml_mock, list(UUIDS[:1]))


@pytest.fixture
def old_gpus(nvml_mock: Any) -> FakeGpus:
    """Two pre-Volta GPUs: no energy counter, power only."""
    return FakeGpus(nvml_mock, list(UUIDS[:2]), counter=False)


def write_zone(path: Path, name: str, energy_uj: int, max_range_uj: int = 262_143_328_850) -> Path:
    """One powercap zone folder as the kernel lays it out."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return path


def set_energy(zone: Path, energy_uj: int) -> None:
    """Move a zone's counter to a new raw value."""
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def two_socket_tree(tmp_path: Path) -> dict[str, Path]:
    """Two packages, each with core and dram subzones, plus psys (like a 2-socket Xeon)."""
    root = tmp_path / "powercap"
    zones = {
        "pkg0": write_zone(root / "intel-rapl:0", "package-0", 1_000_000),
        "core0": write_zone(root / "intel-rapl:0" / "intel-rapl:0:0", "core", 500_000),
        "dram0": write_zone(root / "intel-rapl:0" / "intel-rapl:0:1", "dram", 2_000_000),
        "pkg1": write_zone(root / "intel-rapl:1", "package-1", 3_000_000),
        "dram1": write_zone(root / "intel-rapl:1" / "intel-rapl:1:0", "dram", 4_000_000),
        "psys": write_zone(root / "intel-rapl:2", "psys", 9_000_000),
    }
    # The kernel also links every subzone at the top level, and a control-type folder exists.
    (root / "intel-rapl:0:1").symlink_to(zones["dram0"])
    (root / "intel-rapl").mkdir()
    zones["root"] = root
    return zones


@pytest.fixture
def enforce_file_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make unreadable files unreadable even for root, as the kernel does for energy_uj."""
    original = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.exists() and not os.stat(self).st_mode & (
            stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        ):
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)


# --- processes sharing a GPU ------------------------------------------------------------------

PID_A, PID_B, PID_C = 4_100_001, 4_100_002, 4_100_003
"""Pids of processes that do not exist: process A (this one), B (another metered), C."""


@pytest.fixture
def fake_pids(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[int]]:
    """Fake pids are classified by the returned ``{pid: [ancestors]}``; no process groups.

    The pid namespace is the host's (these machines run the tests in a container).
    """
    from carbonledger.measure import nvml_source

    parents: dict[int, list[int]] = {}
    monkeypatch.setattr(gpu_share, "_ancestors", lambda pid: parents.get(pid, []))
    monkeypatch.setattr(gpu_share, "_pgid", lambda pid: None)
    monkeypatch.setattr(nvml_source, "in_host_pid_namespace", lambda: True)
    return parents


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    """A factory of registries of metered processes in one private folder (fake pids live)."""

    def make() -> gpu_registry.MeteredRegistry:
        return gpu_registry.MeteredRegistry(
            tmp_path / "registry", alive=lambda pid, started: True, ttl_s=0.0
        )

    return make
