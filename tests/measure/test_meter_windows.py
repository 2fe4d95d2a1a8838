"""The Meter: windows that overlap and nest, cumulative reads, peaks, lifecycle, sampling."""

from __future__ import annotations

import threading

import pytest

from carbonledger.errors import MeasurementError
from carbonledger.measure import METHOD_NVML_COUNTER, Meter, shared_meter
from carbonledger.measure.cpu_estimate import CpuEstimateSource
from carbonledger.testing import FakeClock, FakeSource, fake_meter

J_PER_KWH = 3.6e6


def _meter(clock: FakeClock) -> Meter:
    return fake_meter({"gpu": 300.0, "cpu": 100.0, "ram": 10.0}, clock=clock)


def test_window_energy_per_component_and_totals() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    window = meter.open_window()
    clock.advance(60.0)
    result = window.close()
    assert result.duration_s == pytest.approx(60.0)
    assert result.energy_of("gpu") * J_PER_KWH == pytest.approx(300 * 60)
    assert result.energy_of("cpu") * J_PER_KWH == pytest.approx(100 * 60)
    assert result.energy_kwh * J_PER_KWH == pytest.approx(410 * 60)
    assert result.avg_power_w == pytest.approx(410.0)
    assert result.methods == "cpu=fake;gpu=fake;ram=fake"
    assert result.attribution == "device"
    assert not any(c.measured for c in result.components.values())
    assert all(c.share == 1.0 for c in result.components.values())


def test_overlapping_windows_each_get_their_own_interval() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    a = meter.open_window()
    clock.advance(10.0)
    b = meter.open_window()
    clock.advance(10.0)
    ra = a.close()
    clock.advance(10.0)
    rb = b.close()
    assert ra.duration_s == pytest.approx(20.0) and rb.duration_s == pytest.approx(20.0)
    assert ra.energy_kwh * J_PER_KWH == pytest.approx(410 * 20)
    assert rb.energy_kwh * J_PER_KWH == pytest.approx(410 * 20)
    assert rb.start_s - ra.start_s == pytest.approx(10.0)


def test_nested_windows_add_up() -> None:
    clock = FakeClock()
    meter = fake_meter({"gpu": [(0, 100.0), (5, 200.0), (15, 100.0)]}, clock=clock)
    outer = meter.open_window()
    clock.advance(5.0)
    inner = meter.open_window()
    clock.advance(10.0)
    r_inner = inner.close()
    clock.advance(5.0)
    r_outer = outer.close()
    assert r_inner.energy_kwh * J_PER_KWH == pytest.approx(200 * 10)
    assert r_outer.energy_kwh * J_PER_KWH == pytest.approx(100 * 5 + 200 * 10 + 100 * 5)
    assert r_outer.energy_kwh > r_inner.energy_kwh


def test_read_is_cumulative_and_keeps_the_window_open() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    window = meter.open_window()
    clock.advance(30.0)
    first = window.read()
    clock.advance(30.0)
    second = window.read()
    assert not window.closed
    assert second.energy_kwh == pytest.approx(2 * first.energy_kwh)
    assert second.start_s == first.start_s


def test_close_is_idempotent_and_freezes_the_result() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    window = meter.open_window()
    clock.advance(5.0)
    result = window.close()
    clock.advance(100.0)
    assert window.closed
    assert window.close() is result
    assert window.read() is result


def test_peak_power_is_the_highest_between_reads() -> None:
    clock = FakeClock()
    meter = fake_meter({"gpu": [(0, 100.0), (10, 400.0), (20, 100.0)]}, clock=clock)
    window = meter.open_window()
    clock.advance(10.0)
    window.read()
    clock.advance(10.0)
    window.read()  # 400 W between these two reads
    clock.advance(20.0)
    gpu = window.close().components["gpu"]
    assert gpu.avg_power_w == pytest.approx((100 * 10 + 400 * 10 + 100 * 20) / 40)
    assert gpu.peak_power_w == pytest.approx(400.0)


def test_peaks_seen_before_a_window_opened_do_not_leak_into_it() -> None:
    clock = FakeClock()
    meter = fake_meter({"gpu": [(0, 900.0), (10, 100.0)]}, clock=clock)
    early = meter.open_window()
    clock.advance(10.0)
    late = meter.open_window()
    clock.advance(10.0)
    assert late.close().components["gpu"].peak_power_w == pytest.approx(100.0)
    assert early.close().components["gpu"].peak_power_w == pytest.approx(900.0)


def test_meter_close_finalises_open_windows() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    window = meter.open_window()
    clock.advance(7.0)
    meter.close()
    meter.close()  # idempotent
    assert window.closed
    clock.advance(100.0)
    assert window.close().duration_s == pytest.approx(7.0)
    assert all(s.closed for s in meter.sources)  # type: ignore[attr-defined]
    with pytest.raises(MeasurementError, match="new Meter"):
        meter.open_window()


def test_context_managers() -> None:
    clock = FakeClock()
    with _meter(clock) as meter:
        with meter.open_window() as window:
            clock.advance(2.0)
        assert window.closed
    with pytest.raises(MeasurementError):
        meter.start()


def test_start_is_idempotent_and_starts_sources_once() -> None:
    clock = FakeClock()
    source = FakeSource("gpu", 100.0, clock=clock, method=METHOD_NVML_COUNTER)
    meter = Meter([source], clock=clock)
    meter.start()
    clock.advance(3.0)
    meter.start()
    window = meter.open_window()
    clock.advance(1.0)
    gpu = window.close().components["gpu"]
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(100.0)
    assert gpu.measured  # the method decides what counts as measured


def test_no_thread_unless_a_source_needs_sampling() -> None:
    before = threading.active_count()
    meter = _meter(FakeClock())
    meter.open_window()
    assert not meter.sampling and threading.active_count() == before
    meter.close()

    sampled = Meter([CpuEstimateSource(50.0, period_s=0.05)])
    sampled.start()
    threads = [t for t in threading.enumerate() if t.name == "carbonledger-sampler"]
    assert sampled.sampling and len(threads) == 1 and threads[0].daemon
    sampled.close()
    assert not sampled.sampling
    assert not [t for t in threading.enumerate() if t.name == "carbonledger-sampler"]


def test_shared_meter_is_one_per_process_even_across_threads() -> None:
    seen: list[Meter] = []
    threads = [threading.Thread(target=lambda: seen.append(shared_meter())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1
    assert shared_meter() is seen[0]
    seen[0].close()
    assert shared_meter() is not seen[0]  # a closed shared meter is replaced


def test_concurrent_reads_from_threads_stay_consistent() -> None:
    meter = Meter([CpuEstimateSource(50.0, period_s=0.01)])
    windows = [meter.open_window() for _ in range(4)]
    errors: list[BaseException] = []

    def reader(i: int) -> None:
        try:
            last = 0.0
            for _ in range(50):
                now = windows[i].read().energy_kwh
                assert now >= last
                last = now
        except BaseException as exc:  # noqa: BLE001 - collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meter.close()
    assert errors == []
    results = [w.close() for w in windows]
    assert results[0].energy_kwh >= results[-1].energy_kwh > 0
