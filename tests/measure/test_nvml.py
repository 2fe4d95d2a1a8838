"""NVIDIA GPUs through NVML: counter deltas, pre-Volta power integration, visible devices, errors.

``pynvml`` is patched with ``autospec=True`` where carbonledger uses it; the scripted devices
live in ``FakeGpus`` (measure_fakes).
"""

from __future__ import annotations

import time
from typing import Any

import pynvml
import pytest

from carbonledger.errors import NvmlError, NvmlNotSupportedError
from carbonledger.measure import METHOD_NVML_COUNTER, METHOD_NVML_POWER, Meter, nvml_source
from carbonledger.measure.hardware import describe_hardware
from carbonledger.measure.nvml import parse_visible_devices
from carbonledger.measure.nvml_source import open_gpu_source
from carbonledger.testing import FakeClock


def test_counter_path_sums_mj_deltas_of_every_visible_gpu(gpus: Any) -> None:
    source, notes = open_gpu_source()
    assert source is not None and notes == []
    assert source.method == METHOD_NVML_COUNTER
    assert source.sample_period_s is None  # counters are read at window boundaries only
    assert source.devices == tuple(gpus.uuids)
    source.start()
    assert source.energy_j() == 0.0
    gpus.energy_mj[0] += 150_000  # 150 J
    gpus.energy_mj[1] += 50_500  # 50.5 J
    gpus.energy_mj[2] += 1  # 1 mJ
    assert source.energy_j() == pytest.approx(200.501)
    gpus.energy_mj[2] += 999
    assert source.energy_j() == pytest.approx(200.501 + 0.999)
    source.close()
    source.close()  # idempotent
    assert gpus.mock.nvmlShutdown.call_count == 1


def test_counter_path_through_a_meter_window(gpus: Any) -> None:
    source, _ = open_gpu_source()
    assert source is not None
    clock = FakeClock()
    meter = Meter([source], clock=clock)
    window = meter.open_window()
    assert not meter.sampling  # no background thread for counters
    gpus.energy_mj = [e + 360_000 for e in gpus.energy_mj]  # 3 x 360 J over 10 s
    clock.advance(10.0)
    gpu = window.close().components["gpu"]
    assert gpu.energy_kwh == pytest.approx(3 * 360 / 3.6e6)
    assert gpu.avg_power_w == pytest.approx(108.0)
    assert gpu.measured and gpu.method == METHOD_NVML_COUNTER
    assert gpu.peak_power_w >= gpu.avg_power_w
    meter.close()


def test_counter_that_goes_back_after_a_driver_reload_is_not_negative(gpus: Any) -> None:
    source, _ = open_gpu_source()
    assert source is not None
    source.start()
    gpus.energy_mj[0] += 5_000
    first = source.energy_j()
    gpus.energy_mj[0] = 2_000  # counter restarted from 0 and counted 2 J since
    assert source.energy_j() == pytest.approx(first + 2.0)


def test_pre_volta_gpu_falls_back_to_power_integration(old_gpus: Any) -> None:
    source, notes = open_gpu_source(sample_hz=20.0)
    assert source is not None
    assert source.method == METHOD_NVML_POWER
    assert source.sample_period_s == pytest.approx(0.05)
    assert any("pre-Volta" in n for n in notes)


def test_power_integration_uses_the_trapezoid_rule(old_gpus: Any, mocker: Any) -> None:
    ticks = iter([100.0, 100.1, 100.2, 100.3])
    mocker.patch.object(nvml_source.time, "monotonic", side_effect=lambda: next(ticks))
    source, _ = open_gpu_source()
    assert source is not None
    old_gpus.power_mw = [100_000, 100_000]  # 200 W at t=100.0
    source.start()
    old_gpus.power_mw = [200_000, 100_000]  # 300 W at t=100.1
    source.sample()
    old_gpus.power_mw = [300_000, 100_000]  # 400 W at t=100.2
    source.sample()
    assert source.pop_peak_power_w() == pytest.approx(400.0)
    old_gpus.power_mw = [300_000, 100_000]  # 400 W at t=100.3
    expected = (200 + 300) / 2 * 0.1 + (300 + 400) / 2 * 0.1 + (400 + 400) / 2 * 0.1
    assert source.energy_j() == pytest.approx(expected)


def test_power_integration_samples_at_least_at_10_hz_in_a_meter(old_gpus: Any) -> None:
    source, _ = open_gpu_source(sample_hz=10.0)
    assert source is not None
    meter = Meter([source])
    window = meter.open_window()
    assert meter.sampling
    calls_before = old_gpus.mock.nvmlDeviceGetPowerUsage.call_count
    time.sleep(0.65)
    result = window.close()
    meter.close()
    samples = (old_gpus.mock.nvmlDeviceGetPowerUsage.call_count - calls_before) / 2  # 2 GPUs
    assert samples >= 5  # ~6 sampler ticks + the read at close, on a loaded machine
    gpu = result.components["gpu"]
    assert gpu.method == METHOD_NVML_POWER and gpu.measured
    assert gpu.avg_power_w == pytest.approx(500.0, rel=0.01)  # 2 x 250 W constant
    assert gpu.energy_kwh * 3.6e6 == pytest.approx(500.0 * result.duration_s, rel=0.05)
    assert not meter.sampling


def test_forcing_the_counter_on_a_pre_volta_gpu_is_an_error(old_gpus: Any) -> None:
    with pytest.raises(NvmlNotSupportedError, match="CARBONLEDGER_GPU_METHOD=power"):
        open_gpu_source("counter")
    assert old_gpus.mock.nvmlShutdown.called  # the failed open released NVML


def test_forcing_power_integration_on_a_counter_gpu(gpus: Any) -> None:
    source, _ = open_gpu_source("power")
    assert source is not None and source.method == METHOD_NVML_POWER


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("1", [1]),
        ("2,0", [2, 0]),
        ("GPU-bbbbbbbb-1111-2222-3333-444444444444", [1]),
        ("GPU-cccc", [2]),  # a unique prefix is enough, as for CUDA
        ("gpu-aaaaaaaa,1", [0, 1]),
        ("0,7,1", [0]),  # CUDA stops at the first invalid entry
        ("", []),
        ("-1", []),
        ("1,1", [1]),
    ],
)
def test_cuda_visible_devices_with_indices_and_uuids(
    gpus: Any, monkeypatch: pytest.MonkeyPatch, env: str, expected: list[int]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    source, _ = open_gpu_source()
    if not expected:
        assert source is None
        return
    assert source is not None
    assert source.devices == tuple(gpus.uuids[i] for i in expected)
    source.start()
    for i in range(3):
        gpus.energy_mj[i] += 1_000 * (i + 1)
    assert source.energy_j() == pytest.approx(sum(i + 1 for i in expected))


def test_invalid_and_old_style_mig_entries_leave_a_note() -> None:
    uuids = ["GPU-aa", "GPU-ab"]
    found = parse_visible_devices("0,GPU-a", 2, uuids.__getitem__)
    assert (found.indices, found.mig_uuids) == ([0], [])
    assert found.notes == [
        "CUDA_VISIBLE_DEVICES entry 'GPU-a' matches no GPU; later entries are ignored, as CUDA does"
    ]
    old = parse_visible_devices("MIG-GPU-aa/1/0", 2, uuids.__getitem__)
    assert old.indices == [] and "MIG-<uuid>" in old.notes[0]
    assert parse_visible_devices(None, 2, uuids.__getitem__).indices == [0, 1]


def test_mig_instance_uuids_are_kept_for_their_gpu() -> None:
    uuids = ["GPU-aa", "GPU-ab"]
    found = parse_visible_devices("MIG-1234,1,MIG-5678", 2, uuids.__getitem__)
    assert found.indices == [1]
    assert found.mig_uuids == ["MIG-1234", "MIG-5678"]
    assert found.notes == []


def test_missing_nvml_library_means_no_gpus_not_an_error(nvml_mock: Any) -> None:
    nvml_mock.nvmlInit.side_effect = pynvml.NVMLError_LibraryNotFound
    assert open_gpu_source() == (None, [])
    meter = Meter()
    window = meter.open_window()
    assert "gpu" not in window.close().components
    meter.close()
    assert describe_hardware().gpu_count == 0


def test_missing_driver_means_no_gpus(nvml_mock: Any) -> None:
    nvml_mock.nvmlInit.side_effect = pynvml.NVMLError_DriverNotLoaded
    assert open_gpu_source() == (None, [])


def test_missing_nvidia_ml_py_means_no_gpus(mocker: Any) -> None:
    mocker.patch("carbonledger.measure.nvml.pynvml", None)
    assert open_gpu_source() == (None, [])


def test_no_gpu_on_the_machine_means_no_source(nvml_mock: Any) -> None:
    nvml_mock.nvmlDeviceGetCount.return_value = 0
    assert open_gpu_source() == (None, [])
    assert nvml_mock.nvmlShutdown.called


@pytest.mark.parametrize(
    ("error", "cls", "hint"),
    [
        (pynvml.NVMLError_NotSupported, NvmlNotSupportedError, "CARBONLEDGER_GPU_METHOD"),
        (pynvml.NVMLError_GpuIsLost, NvmlError, "fell off the bus"),
        (pynvml.NVMLError_NoPermission, NvmlError, "permissions"),
        (pynvml.NVMLError_Unknown, NvmlError, "nvidia-smi"),
    ],
)
def test_nvml_errors_become_typed_carbonledger_errors(
    gpus: Any, error: type[Exception], cls: type[Exception], hint: str
) -> None:
    source, _ = open_gpu_source()
    assert source is not None
    source.start()
    gpus.mock.nvmlDeviceGetTotalEnergyConsumption.side_effect = error
    with pytest.raises(cls, match=hint) as info:
        source.energy_j()
    assert type(info.value) is cls
    assert isinstance(info.value.__cause__, pynvml.NVMLError)
    assert info.value.code == info.value.__cause__.value


def test_unexpected_nvml_init_failure_is_raised(nvml_mock: Any) -> None:
    nvml_mock.nvmlInit.side_effect = pynvml.NVMLError_NoPermission
    with pytest.raises(NvmlError, match="permissions"):
        open_gpu_source()


def test_gpu_metadata(gpus: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    info = describe_hardware()
    assert info.gpu_count == 2
    assert [g.uuid for g in info.gpus] == [gpus.uuids[2], gpus.uuids[0]]
    first = info.gpus[0]
    assert first.name == info.gpu_model == "NVIDIA A100-SXM4-40GB"
    assert first.power_limit_w == pytest.approx(400.0)
    assert first.memory_gb == pytest.approx(40.0)
    assert first.driver_version == "550.54.15"
    tags = info.as_tags()
    assert tags["carbon.gpu_count"] == "2"
    assert tags["carbon.gpu_model"] == "NVIDIA A100-SXM4-40GB"
    assert tags["carbon.gpu_count_host"] == "3"  # present, whatever CUDA_VISIBLE_DEVICES says
    assert set(tags) == {
        "carbon.gpu_model",
        "carbon.gpu_count",
        "carbon.gpu_count_host",
        "carbon.cpu_model",
        "carbon.cpu_count",
        "carbon.cpu_count_used",
        "carbon.ram_gb",
    }  # no instance type or machine model in an empty DMI folder


def test_gpu_without_power_limit_still_described(gpus: Any) -> None:
    gpus.mock.nvmlDeviceGetEnforcedPowerLimit.side_effect = pynvml.NVMLError_NotSupported
    info = describe_hardware()
    assert info.gpu_count == 3 and info.gpus[0].power_limit_w is None
