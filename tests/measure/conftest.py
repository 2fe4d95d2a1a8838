"""Fixtures for the measurement tests: fresh module state, fake NVML and powercap trees."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from measure_fakes import FakeGpus

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
