"""Fixtures for the measurement tests: fresh module state, fake NVML and powercap trees."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from carbonledger.measure import detect, meter


@pytest.fixture(autouse=True)
def _fresh_measure_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No shared meter or RAPL warning leaks between tests; CUDA_VISIBLE_DEVICES is unset."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    meter.reset_shared_meter()
    detect.reset_warnings()
    yield
    meter.reset_shared_meter()
    detect.reset_warnings()


class FakeGpus:
    """Scripted state behind a patched ``pynvml``: counters (mJ) and power (mW) per device."""

    def __init__(self, mock: Any, uuids: list[str], *, counter: bool = True) -> None:
        self.mock = mock
        self.uuids = uuids
        self.energy_mj = [10_000_000 + 1_000 * i for i in range(len(uuids))]
        self.power_mw = [250_000 for _ in uuids]
        self.handles = [f"handle-{i}" for i in range(len(uuids))]
        mock.nvmlDeviceGetCount.return_value = len(uuids)
        mock.nvmlDeviceGetHandleByIndex.side_effect = lambda i: self.handles[i]
        mock.nvmlDeviceGetUUID.side_effect = lambda h: self.uuids[self.handles.index(h)]
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
