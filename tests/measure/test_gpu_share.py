"""Shared GPUs: per-process SM shares, the device remainder, never charged twice, fallbacks.

``pynvml`` is patched with ``autospec=True`` (``FakeGpus``); processes A, B and C are fake pids
(``fake_pids``), and each "process" is one ``NvmlGpuSource`` with its own ``Meter`` and
registry entry, as two training processes on one machine would have.
"""

from __future__ import annotations

from typing import Any

import pynvml
import pytest
from measure_fakes import PID_A, PID_B, PID_C, FakeGpus

from carbonledger.measure import (
    METHOD_NVML_COUNTER,
    METHOD_NVML_EVEN_SHARE,
    METHOD_NVML_PROCESS_SHARE,
    Meter,
    Window,
    WindowResult,
    gpu_share,
    nvml,
)
from carbonledger.measure.base import J_PER_KWH, Attribution, ComponentEnergy
from carbonledger.measure.gpu_registry import MeteredRegistry
from carbonledger.measure.gpu_share import ProcessClassifier, Unit, split_device
from carbonledger.measure.nvml_source import NvmlGpuSource
from carbonledger.testing import FakeClock


def _source(
    *,
    pid: int,
    attribution: Attribution = "device",
    registry: MeteredRegistry | None = None,
    indices: tuple[int, ...] | None = None,
) -> NvmlGpuSource:
    devices, _ = nvml.visible_gpus()
    chosen = [d for d in devices if indices is None or d.index in indices]
    return NvmlGpuSource(
        chosen,
        mode="counter",
        attribution=attribution,
        registry=registry,
        pid=pid,
        share_period_s=3600.0,  # no sampler tick during a test: reads are the intervals
        owns_nvml=False,
    )


def _open(clock: FakeClock, *sources: NvmlGpuSource) -> list[Window]:
    return [Meter([s], clock=clock).open_window() for s in sources]


def _a_and_b(registry: Any, clock: FakeClock) -> tuple[Window, Window]:
    """Processes A and B metering GPU 0 in device attribution: their open windows."""
    a = _source(pid=PID_A, registry=registry())
    b = _source(pid=PID_B, registry=registry())
    wa, wb = _open(clock, a, b)
    return wa, wb


def _gpu(result: WindowResult) -> ComponentEnergy:
    return result.components["gpu"]


def _j(kwh: float) -> float:
    return kwh * J_PER_KWH


def test_two_processes_on_one_gpu_get_their_sm_shares_and_the_sum_is_the_counter(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    wa, wb = _a_and_b(registry, clock)
    # Over the window: A ran kernels 60 % of the time, B 20 %, an unmetered process C 20 %.
    one_gpu.push_util(0, {PID_A: 60, PID_B: 20, PID_C: 20})
    one_gpu.energy_mj[0] += 100_000  # 100 J
    clock.advance(10.0)
    ra, rb = _gpu(wa.close()), _gpu(wb.close())
    assert ra.method == rb.method == METHOD_NVML_PROCESS_SHARE
    assert _j(ra.energy_kwh) == pytest.approx(60.0)
    assert _j(rb.energy_kwh) == pytest.approx(20.0)
    # C's 20 J is the remainder, reported once: by A and B in proportion to their shares.
    assert _j(ra.remainder_kwh) == pytest.approx(15.0)
    assert _j(rb.remainder_kwh) == pytest.approx(5.0)
    total = ra.energy_kwh + rb.energy_kwh + ra.remainder_kwh + rb.remainder_kwh
    assert _j(total) == pytest.approx(100.0)
    assert ra.share == pytest.approx(0.6) and ra.measured
    assert ra.avg_power_w == pytest.approx(6.0)


def test_several_intervals_and_a_share_that_changes(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    wa, wb = _a_and_b(registry, clock)
    for sm_a, sm_b, joules in ((90, 10, 50), (50, 50, 80), (0, 100, 30)):
        one_gpu.push_util(0, {PID_A: sm_a, PID_B: sm_b} if sm_a else {PID_B: sm_b})
        one_gpu.energy_mj[0] += joules * 1000
        clock.advance(1.0)
        wa.read(), wb.read()  # each process reads at its flushes
    ra, rb = _gpu(wa.close()), _gpu(wb.close())
    assert _j(ra.energy_kwh) == pytest.approx(45 + 40 + 0)
    assert _j(rb.energy_kwh) == pytest.approx(5 + 40 + 30)
    assert ra.remainder_kwh == rb.remainder_kwh == 0.0  # every active process was metered
    assert _j(ra.energy_kwh + rb.energy_kwh) == pytest.approx(160.0)


def test_a_gpu_used_by_one_metered_run_alone_keeps_the_whole_device_figure(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    (wa,) = _open(clock, _source(pid=PID_A, registry=registry()))
    one_gpu.push_util(0, {PID_A: 40, PID_C: 40})  # C is not metered: device semantics
    one_gpu.energy_mj[0] += 100_000
    clock.advance(10.0)
    ra = _gpu(wa.close())
    assert ra.method == METHOD_NVML_COUNTER
    assert _j(ra.energy_kwh) == pytest.approx(100.0)
    assert ra.remainder_kwh == 0.0 and ra.share == 1.0


def test_a_process_that_stopped_metering_no_longer_counts_as_metered(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    wa, wb = _a_and_b(registry, clock)
    wb.close()  # B's run ended; B's process goes on using the GPU, unmetered
    one_gpu.push_util(0, {PID_A: 50, PID_B: 50})
    one_gpu.energy_mj[0] += 100_000
    clock.advance(10.0)
    first = _gpu(wa.read())  # an interval that B's membership overlapped: split
    assert _j(first.energy_kwh) == pytest.approx(50.0)
    assert _j(first.remainder_kwh) == pytest.approx(50.0)  # B's activity, after its run
    one_gpu.push_util(0, {PID_A: 50, PID_B: 50})
    one_gpu.energy_mj[0] += 100_000
    clock.advance(10.0)
    ra = _gpu(wa.close())  # B stopped metering before this interval: A is alone again
    assert _j(ra.energy_kwh) == pytest.approx(50.0 + 100.0)
    assert ra.method == f"{METHOD_NVML_PROCESS_SHARE}+{METHOD_NVML_COUNTER}"


def test_a_run_that_ends_first_is_still_metered_in_the_others_last_interval(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    wa, wb = _a_and_b(registry, clock)
    one_gpu.push_util(0, {PID_A: 75, PID_B: 25})
    one_gpu.energy_mj[0] += 100_000
    clock.advance(10.0)
    ra = _gpu(wa.close())  # A ends and leaves the registry before B reads
    rb = _gpu(wb.close())
    assert _j(ra.energy_kwh) == pytest.approx(75.0) and _j(rb.energy_kwh) == pytest.approx(25.0)


def test_one_process_on_two_gpus_with_another_process_on_one_of_them(
    gpus: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    a = _source(pid=PID_A, registry=registry(), indices=(0, 1))
    b = _source(pid=PID_B, registry=registry(), indices=(1,))
    wa, wb = _open(clock, a, b)
    gpus.push_util(0, {PID_A: 50})
    gpus.push_util(1, {PID_A: 30, PID_B: 90})
    gpus.energy_mj[0] += 100_000
    gpus.energy_mj[1] += 200_000
    clock.advance(10.0)
    ra, rb = _gpu(wa.close()), _gpu(wb.close())
    # GPU 0 is A's alone (whole), GPU 1 is split 30:90.
    assert _j(ra.energy_kwh) == pytest.approx(100.0 + 50.0)
    assert _j(rb.energy_kwh) == pytest.approx(150.0)
    assert ra.method == f"{METHOD_NVML_COUNTER}+{METHOD_NVML_PROCESS_SHARE}"
    assert rb.method == METHOD_NVML_PROCESS_SHARE
    assert _j(ra.energy_kwh + rb.energy_kwh + ra.remainder_kwh + rb.remainder_kwh) == (
        pytest.approx(300.0)
    )


def test_process_attribution_splits_against_unmetered_processes_too(
    gpus: FakeGpus, fake_pids: Any
) -> None:
    clock = FakeClock()
    (wa,) = _open(clock, _source(pid=PID_A, attribution="process", indices=(0, 1)))
    gpus.push_util(0, {PID_A: 50})
    gpus.push_util(1, {PID_A: 30, PID_C: 90})
    gpus.energy_mj[0] += 100_000
    gpus.energy_mj[1] += 200_000
    clock.advance(10.0)
    ra = _gpu(wa.close())
    assert ra.method == METHOD_NVML_PROCESS_SHARE
    assert _j(ra.energy_kwh) == pytest.approx(100.0 + 50.0)
    assert _j(ra.remainder_kwh) == pytest.approx(150.0)  # C's part: the device's remainder
    assert ra.share == pytest.approx(0.5)


def test_an_idle_gpu_is_remainder_in_process_mode_and_whole_in_device_mode(
    one_gpu: FakeGpus, fake_pids: Any
) -> None:
    clock = FakeClock()
    wp, wd = _open(
        clock, _source(pid=PID_A, attribution="process"), _source(pid=PID_B, attribution="device")
    )
    one_gpu.energy_mj[0] += 60_000  # 60 J of idle power; no process ran a kernel
    clock.advance(1.0)
    rp, rd = _gpu(wp.close()), _gpu(wd.close())
    assert rp.energy_kwh == 0.0 and _j(rp.remainder_kwh) == pytest.approx(60.0)
    assert rp.method == METHOD_NVML_PROCESS_SHARE
    assert _j(rd.energy_kwh) == pytest.approx(60.0) and rd.method == METHOD_NVML_COUNTER


def test_an_idle_gpu_shared_by_two_metered_runs_is_remainder_reported_once(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    clock = FakeClock()
    wa, wb = _open(
        clock, _source(pid=PID_A, registry=registry()), _source(pid=PID_B, registry=registry())
    )
    one_gpu.energy_mj[0] += 80_000
    clock.advance(1.0)
    ra, rb = _gpu(wa.close()), _gpu(wb.close())
    assert ra.energy_kwh == rb.energy_kwh == 0.0  # neither ran: nobody is charged idle power
    assert _j(ra.remainder_kwh) == pytest.approx(40.0)
    assert _j(rb.remainder_kwh) == pytest.approx(40.0)


def test_older_driver_without_per_process_samples_splits_evenly_and_says_so(
    one_gpu: FakeGpus, fake_pids: Any, registry: Any
) -> None:
    one_gpu.per_process = False
    one_gpu.running[one_gpu.handles[0]] = [PID_A, PID_B, PID_C]
    clock = FakeClock()
    a, b = _source(pid=PID_A, registry=registry()), _source(pid=PID_B, registry=registry())
    wa, wb = _open(clock, a, b)
    one_gpu.energy_mj[0] += 90_000
    clock.advance(1.0)
    ra, rb = _gpu(wa.close()), _gpu(wb.close())
    assert ra.method == rb.method == METHOD_NVML_EVEN_SHARE
    assert _j(ra.energy_kwh) == pytest.approx(30.0) and _j(rb.energy_kwh) == pytest.approx(30.0)
    assert _j(ra.remainder_kwh + rb.remainder_kwh) == pytest.approx(30.0)  # C's third
    assert any("no per-process utilisation" in n and "evenly" in n for n in a.notes)
    meter = Meter([a])
    assert any(METHOD_NVML_EVEN_SHARE in n for n in meter.notes)  # the meter reports it


def test_a_driver_with_no_process_queries_charges_whole_and_says_so(
    one_gpu: FakeGpus, fake_pids: Any
) -> None:
    one_gpu.per_process = False
    one_gpu.mock.nvmlDeviceGetComputeRunningProcesses.side_effect = pynvml.NVMLError_NotSupported
    clock = FakeClock()
    source = _source(pid=PID_A, attribution="process")
    (wa,) = _open(clock, source)
    one_gpu.energy_mj[0] += 10_000
    clock.advance(1.0)
    ra = _gpu(wa.close())
    assert _j(ra.energy_kwh) == pytest.approx(10.0) and ra.method == METHOD_NVML_COUNTER
    assert any("charged whole" in n for n in source.notes)


def test_in_a_pid_namespace_gpus_are_charged_whole_and_it_says_why(
    one_gpu: FakeGpus, fake_pids: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.measure import nvml_source

    monkeypatch.setattr(nvml_source, "in_host_pid_namespace", lambda: False)
    clock = FakeClock()
    source = _source(pid=PID_A, attribution="process")
    (wa,) = _open(clock, source)
    one_gpu.push_util(0, {999: 100})  # a host pid this process cannot recognise
    one_gpu.energy_mj[0] += 10_000
    clock.advance(1.0)
    assert _j(_gpu(wa.close()).energy_kwh) == pytest.approx(10.0)
    assert any("--pid=host" in n for n in source.notes)


def test_children_and_process_group_are_the_process_own_unless_metered(
    fake_pids: dict[int, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, peer_child, sibling = 4_200_001, 4_200_002, 4_200_003
    fake_pids.update({worker: [PID_A, 1], peer_child: [PID_B, PID_A, 1], sibling: [77, 1]})
    groups = {PID_A: 50, sibling: 50, PID_C: 60}
    monkeypatch.setattr(gpu_share, "_pgid", groups.get)
    who = ProcessClassifier(PID_A, {PID_B: [(100.0, 200.0)]})
    assert who.kind(PID_A, 150.0) == who.kind(worker, 150.0) == "own"  # e.g. DataLoader worker
    assert who.kind(sibling, 150.0) == "own"  # same process group: a torchrun rank beside it
    assert who.kind(PID_B, 150.0) == who.kind(peer_child, 150.0) == "peer"
    assert who.kind(PID_B, 250.0) == "other"  # B had stopped metering by then
    assert who.kind(PID_C, 150.0) == "other"


def test_split_device_puts_inactive_units_and_others_in_the_remainder() -> None:
    units = [Unit(0.5, own_w=10.0, other_w=30.0), Unit(0.25), Unit(0.25, peer_w=5.0)]
    split = split_device(400.0, units, peer_count=1)
    assert split.own_j == pytest.approx(50.0)  # 200 J x 10/40
    assert split.metered_j == pytest.approx(150.0)  # + the peer's whole 100 J unit
    assert split.remainder_j == pytest.approx(250.0)  # the other's 150 J + the idle unit
    assert split.own_remainder_j == pytest.approx(250.0 * 50 / 150)
