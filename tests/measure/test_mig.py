"""MIG: a process on a MIG instance is charged the GPU's energy x its share of compute slices.

``pynvml`` is patched with ``autospec=True`` (``FakeGpus.enable_mig``): one 7-slice GPU split
into a 3g, a 2g and a 1g instance (one slice unused).
"""

from __future__ import annotations

from typing import Any

import pynvml
import pytest
from measure_fakes import PID_A, PID_B, PID_C, FakeGpus

from carbonledger.measure import METHOD_NVML_MIG_SHARE, Meter, nvml
from carbonledger.measure.base import J_PER_KWH
from carbonledger.measure.nvml_source import NvmlGpuSource, open_gpu_source
from carbonledger.testing import FakeClock

MIGS = [
    ("MIG-11111111-aaaa-5555-8888-000000000001", 3),
    ("MIG-11111111-aaaa-5555-8888-000000000002", 2),
    ("MIG-11111111-aaaa-5555-8888-000000000003", 1),
]


def _close_after(source: Any, gpus: FakeGpus, joules: float) -> Any:
    clock = FakeClock()
    window = Meter([source], clock=clock).open_window()
    gpus.energy_mj[0] += int(joules * 1000)
    clock.advance(10.0)
    return window.close().components["gpu"]


def test_the_selected_instance_gets_its_slices_never_the_whole_gpu(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_gpu.enable_mig(0, MIGS)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIGS[1][0])
    source, notes = open_gpu_source(registry=registry())
    assert source is not None and notes == []
    assert source.devices == (one_gpu.uuids[0],)  # the physical GPU, for its counter
    gpu = _close_after(source, one_gpu, 70.0)
    assert gpu.method == METHOD_NVML_MIG_SHARE and gpu.measured
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(20.0)  # 70 J x 2/7
    assert gpu.share == pytest.approx(2 / 7)
    # the other instances and the unused slice: the remainder, reported by the only meterer
    assert gpu.remainder_kwh * J_PER_KWH == pytest.approx(50.0)


def test_three_instances_two_metered_processes_and_an_unmetered_one(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handles = one_gpu.enable_mig(0, MIGS)
    one_gpu.running.update({handles[0]: [PID_B], handles[1]: [PID_A], handles[2]: [PID_C]})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIGS[1][0])  # A names its instance
    devices_a, _ = nvml.visible_gpus()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")  # B does not: found by its running process
    devices_b, _ = nvml.visible_gpus()
    assert devices_a[0].mig_selected == (MIGS[1][0],) and devices_b[0].mig_selected == ()
    kwargs: dict[str, Any] = {"mode": "counter", "owns_nvml": False, "share_period_s": 3600.0}
    a = NvmlGpuSource(devices_a, registry=registry(), pid=PID_A, **kwargs)
    b = NvmlGpuSource(devices_b, registry=registry(), pid=PID_B, **kwargs)
    clock = FakeClock()
    wa, wb = (Meter([s], clock=clock).open_window() for s in (a, b))
    one_gpu.energy_mj[0] += 70_000
    clock.advance(10.0)
    ra, rb = wa.close().components["gpu"], wb.close().components["gpu"]
    assert ra.energy_kwh * J_PER_KWH == pytest.approx(20.0)  # 2/7
    assert rb.energy_kwh * J_PER_KWH == pytest.approx(30.0)  # 3/7
    # C's 1/7 and the unused 1/7 are the remainder, reported 2:3 by A and B
    assert ra.remainder_kwh * J_PER_KWH == pytest.approx(8.0)
    assert rb.remainder_kwh * J_PER_KWH == pytest.approx(12.0)
    total = ra.energy_kwh + rb.energy_kwh + ra.remainder_kwh + rb.remainder_kwh
    assert total * J_PER_KWH == pytest.approx(70.0)


def test_a_process_on_no_instance_of_a_mig_gpu_is_charged_nothing(
    one_gpu: FakeGpus, fake_pids: Any
) -> None:
    one_gpu.enable_mig(0, MIGS)
    source, _ = open_gpu_source()
    assert source is not None
    gpu = _close_after(source, one_gpu, 70.0)
    assert gpu.energy_kwh == 0.0 and gpu.method == METHOD_NVML_MIG_SHARE
    assert gpu.remainder_kwh * J_PER_KWH == pytest.approx(70.0)


def test_inside_a_container_the_one_visible_instance_is_the_process_own(
    one_gpu: FakeGpus, fake_pids: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.measure import nvml_source

    monkeypatch.setattr(nvml_source, "in_host_pid_namespace", lambda: False)
    one_gpu.enable_mig(0, MIGS[2:])  # the container sees only its 1g instance
    source, _ = open_gpu_source()
    assert source is not None
    gpu = _close_after(source, one_gpu, 70.0)
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(10.0)


def test_an_instance_whose_slices_are_unknown_is_not_metered_and_says_so(
    one_gpu: FakeGpus, fake_pids: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_gpu.enable_mig(0, MIGS)
    one_gpu.mock.nvmlDeviceGetAttributes.side_effect = pynvml.NVMLError_NotSupported
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIGS[0][0])
    source, _ = open_gpu_source()
    assert source is not None
    gpu = _close_after(source, one_gpu, 70.0)
    assert gpu.energy_kwh == 0.0  # never the whole GPU's 70 J
    assert any("not metered" in n for n in source.notes)


def test_mig_queries_failing_never_crash(one_gpu: FakeGpus, fake_pids: Any) -> None:
    one_gpu.enable_mig(0, MIGS)
    one_gpu.mock.nvmlDeviceGetMaxMigDeviceCount.side_effect = pynvml.NVMLError_Unknown
    source, _ = open_gpu_source()
    assert source is not None
    gpu = _close_after(source, one_gpu, 70.0)
    assert gpu.energy_kwh == 0.0
    assert any("cannot be listed" in n for n in source.notes)


def test_an_unknown_mig_uuid_leaves_a_note(
    one_gpu: FakeGpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_gpu.enable_mig(0, MIGS)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-ffffffff-0000-0000-0000-000000000000")
    devices, notes = nvml.visible_gpus()
    assert devices == [] and "matches no MIG device" in notes[0]
