"""AMD GPUs through amdsmi: lazy optional import, counter x resolution, wraparound, power
fallback, metadata, ROCR/HIP_VISIBLE_DEVICES, errors.

``amdsmi`` needs ROCm's ``libamd_smi.so`` even to import, so it is patched where carbonledger
uses it (``carbonledger.measure.amd.amdsmi``) with ``autospec`` against ``amdsmi_stub``, a
module with the real function signatures.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import amdsmi_stub
import pytest

from carbonledger.errors import AmdSmiError, AmdSmiNotSupportedError
from carbonledger.measure import (
    METHOD_AMDSMI_COUNTER,
    METHOD_AMDSMI_EVEN_SHARE,
    METHOD_AMDSMI_POWER,
    Meter,
    amd,
    detect_sources,
)
from carbonledger.measure.base import J_PER_KWH
from carbonledger.measure.hardware import describe_hardware
from carbonledger.testing import FakeClock

UUIDS = ["5bff74a0-0000-1000-80ea-b4c4cc0ba2e9", "6bff74a0-0000-1000-80ea-b4c4cc0ba2e9"]
SERIALS = ["0xD1C8A3E0B2F44A61", "0xD1C8A3E0B2F44A62"]
RES_UJ = 15.259  # µJ per count, as MI250X/MI300X report


class FakeAmd:
    """Scripted MI300X GPUs behind the patched module: accumulators, power, metadata."""

    def __init__(self, mock: Any, count: int = 2, *, counter: bool = True) -> None:
        self.mock = mock
        self.handles = [f"amd-{i}" for i in range(count)]
        self.counts = [1_000_000 * (i + 1) for i in range(count)]
        self.power_w = [500.0] * count
        mock.AmdSmiInitFlags = amdsmi_stub.AmdSmiInitFlags
        mock.AmdSmiMemoryType = amdsmi_stub.AmdSmiMemoryType
        mock.amdsmi_get_processor_handles.side_effect = lambda: list(self.handles)
        mock.amdsmi_get_gpu_device_uuid.side_effect = lambda h: UUIDS[self.handles.index(h)]
        mock.amdsmi_get_gpu_asic_info.side_effect = lambda h: {
            "market_name": "AMD Instinct MI300X",
            "asic_serial": SERIALS[self.handles.index(h)],
        }
        mock.amdsmi_get_gpu_driver_info.side_effect = lambda h: {"driver_version": "6.8.5"}
        mock.amdsmi_get_power_cap_info.side_effect = lambda h: {"power_cap": 750_000_000}
        mock.amdsmi_get_gpu_memory_total.side_effect = lambda h, kind: 192 * 2**30
        mock.amdsmi_get_power_info.side_effect = lambda h: {
            "current_socket_power": self.power_w[self.handles.index(h)],
            "average_socket_power": "N/A",
        }
        if counter:
            mock.amdsmi_get_energy_count.side_effect = lambda h: {
                "energy_accumulator": self.counts[self.handles.index(h)],
                "counter_resolution": RES_UJ,
                "timestamp": time.time_ns(),
            }
        else:
            mock.amdsmi_get_energy_count.side_effect = amdsmi_stub.AmdSmiLibraryException(2)

    def add_j(self, index: int, joules: float) -> None:
        self.counts[index] += round(joules * 1e6 / RES_UJ)


@pytest.fixture
def amd_mock(mocker: Any) -> Any:
    """``amdsmi`` patched where carbonledger uses it, with the real signatures."""
    return mocker.patch("carbonledger.measure.amd.amdsmi", autospec=amdsmi_stub)


@pytest.fixture
def mi300(amd_mock: Any) -> FakeAmd:
    return FakeAmd(amd_mock)


def _window_j(source: Any, action: Any) -> Any:
    clock = FakeClock()
    window = Meter([source], clock=clock).open_window()
    action()
    clock.advance(10.0)
    return window.close().components["gpu"]


def test_counter_is_accumulator_times_resolution_over_every_visible_gpu(mi300: FakeAmd) -> None:
    source, notes = amd.open_amd_source()
    assert source is not None and notes == [] and source.method == METHOD_AMDSMI_COUNTER
    assert source.devices == tuple(UUIDS)
    mi300.mock.amdsmi_init.assert_called_once_with(amdsmi_stub.AmdSmiInitFlags.INIT_AMD_GPUS)

    def work() -> None:
        mi300.add_j(0, 400.0)
        mi300.add_j(1, 100.0)

    gpu = _window_j(source, work)
    assert gpu.method == METHOD_AMDSMI_COUNTER and gpu.measured
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(500.0, rel=1e-4)
    # a 32-bit counter at 15.3 µJ wraps after 65.5 kJ: watched often enough at 1.5 kW
    assert source.sample_period_s == pytest.approx(2**32 * RES_UJ / 1e6 / 1500.0 / 2)
    source.close()
    mi300.mock.amdsmi_shut_down.assert_called()


def test_a_counter_that_wraps_is_counted_across_the_wrap(mi300: FakeAmd) -> None:
    mi300.counts[0] = 2**32 - 1000
    source, _ = amd.open_amd_source()
    assert source is not None

    def wrap() -> None:
        mi300.counts[0] = 500  # 1500 counts later, past 2**32

    gpu = _window_j(source, wrap)
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(1500 * RES_UJ / 1e6)
    assert amd.counter_delta(2**40, 10) == 10 + 2**64 - 2**40  # a 64-bit accumulator


def test_a_counter_reset_by_a_driver_reload_is_not_taken_for_a_wrap(mi300: FakeAmd) -> None:
    mi300.counts[0] = 3_000_000_000
    source, _ = amd.open_amd_source()
    assert source is not None

    def reload() -> None:
        mi300.counts[0] = 10_000  # back to almost 0: a wrap would imply ~20 kJ in 0 s

    gpu = _window_j(source, reload)
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(10_000 * RES_UJ / 1e6)


def test_without_an_energy_counter_power_is_integrated(amd_mock: Any) -> None:
    gpus = FakeAmd(amd_mock, count=1, counter=False)
    source, notes = amd.open_amd_source(sample_hz=20.0)
    assert source is not None and source.method == METHOD_AMDSMI_POWER
    assert source.sample_period_s == pytest.approx(0.05)
    assert any("integrating socket power" in n for n in notes)
    gpus.mock.amdsmi_get_power_info.side_effect = lambda h: {
        "current_socket_power": "N/A",  # MI250X reports the average only
        "average_socket_power": 400,
    }
    assert amd.power_w("amd-0") == 400.0
    with pytest.raises(AmdSmiNotSupportedError):
        amd.open_amd_source("counter")


def test_power_integration_uses_the_trapezoid_rule(amd_mock: Any, mocker: Any) -> None:
    gpus = FakeAmd(amd_mock, count=1, counter=False)
    ticks = iter([50.0, 50.5, 51.0])
    mocker.patch.object(amd.time, "monotonic", side_effect=lambda: next(ticks))
    source, _ = amd.open_amd_source()
    assert source is not None
    gpus.power_w[0] = 200.0
    source.start()
    gpus.power_w[0] = 400.0
    source.sample()
    assert source.pop_peak_power_w() == pytest.approx(400.0)
    gpus.power_w[0] = 400.0
    assert source.energy_j() == pytest.approx(300.0 * 0.5 + 400.0 * 0.5)


@pytest.mark.parametrize(
    ("rocr", "hip", "expected"),
    [
        (None, None, [0, 1]),
        ("1", None, [1]),
        ("GPU-d1c8a3e0b2f44a62", None, [1]),  # ROCr's unique-id form
        (UUIDS[1][:8], None, [1]),
        ("0,1", "1", [1]),  # HIP indexes the devices ROCr left
        ("1", "0", [1]),
        ("", None, []),
        ("0,7,1", None, [0]),  # stops at the first invalid entry
    ],
)
def test_rocr_and_hip_visible_devices(
    mi300: FakeAmd,
    monkeypatch: pytest.MonkeyPatch,
    rocr: str | None,
    hip: str | None,
    expected: list[int],
) -> None:
    for var, value in (("ROCR_VISIBLE_DEVICES", rocr), ("HIP_VISIBLE_DEVICES", hip)):
        if value is not None:
            monkeypatch.setenv(var, value)
    devices, notes = amd.visible_amd_gpus()
    assert [d.index for d in devices] == expected
    assert bool(notes) == (rocr == "0,7,1")


def test_hip_honours_cuda_visible_devices_when_hip_visible_devices_is_unset(
    mi300: FakeAmd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [d.index for d in amd.visible_amd_gpus()[0]] == [1]


def test_metadata_name_uuid_power_cap_memory(mi300: FakeAmd, mocker: Any) -> None:
    mocker.patch("carbonledger.measure.nvml.nvml_init", return_value=False)
    info = describe_hardware()
    assert info.gpu_count == 2 and info.gpu_model == "AMD Instinct MI300X"
    first = info.gpus[0]
    assert first.uuid == UUIDS[0]
    assert first.power_limit_w == pytest.approx(750.0)  # µW on Linux bare metal
    assert first.memory_gb == pytest.approx(192.0)
    assert first.driver_version == "6.8.5"


def test_an_amd_gpu_metered_by_two_processes_is_split_evenly(amd_mock: Any, registry: Any) -> None:
    gpus = FakeAmd(amd_mock, count=1)
    devices, _ = amd.visible_amd_gpus()
    a = amd.AmdGpuSource(devices, mode="counter", registry=registry(), pid=4_100_001)
    b = amd.AmdGpuSource(devices, mode="counter", registry=registry(), pid=4_100_002)
    clock = FakeClock()
    wa, wb = (Meter([s], clock=clock).open_window() for s in (a, b))
    gpus.add_j(0, 300.0)
    clock.advance(10.0)
    ra, rb = wa.close().components["gpu"], wb.close().components["gpu"]
    assert ra.method == rb.method == METHOD_AMDSMI_EVEN_SHARE
    assert (ra.energy_kwh + rb.energy_kwh) * J_PER_KWH == pytest.approx(300.0, rel=1e-4)
    assert ra.energy_kwh == pytest.approx(rb.energy_kwh)


def test_amdsmi_errors_become_typed_carbonledger_errors(mi300: FakeAmd) -> None:
    source, _ = amd.open_amd_source()
    assert source is not None
    source.start()
    mi300.mock.amdsmi_get_energy_count.side_effect = amdsmi_stub.AmdSmiLibraryException(10)
    with pytest.raises(AmdSmiError, match="render and video groups") as info:
        source.energy_j()
    assert info.value.code == 10
    assert isinstance(info.value.__cause__, amdsmi_stub.AmdSmiException)


def test_no_driver_means_no_amd_source(amd_mock: Any) -> None:
    amd_mock.amdsmi_init.side_effect = amdsmi_stub.AmdSmiLibraryException(34)
    assert amd.open_amd_source() == (None, [])


def test_amdsmi_is_optional_and_imported_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken:  # what `import amdsmi` does without ROCm: prints, then raises KeyError
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name == "amdsmi":
                print("Unable to find libamd_smi.so library")
                raise KeyError("libamd_smi.so")
            return None

    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    assert amd.load_amdsmi() is None
    assert amd.open_amd_source() == (None, [])
    assert capsys.readouterr().out == ""  # the library's print does not reach training logs
    with pytest.raises(AmdSmiError, match=r"carbonledger\[amd\]"):
        amd.amd_call("amdsmi_init")
    sources, _ = detect_sources()
    assert all(not s.method.startswith("amdsmi") for s in sources)
