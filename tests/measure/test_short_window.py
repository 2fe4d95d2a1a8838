"""Windows shorter than the energy counter's update period: never 0 J, and marked as such."""

from __future__ import annotations

from typing import Any

import pytest
from measure_fakes import FakeGpus

from carbonledger.measure import METHOD_NVML_COUNTER, METHOD_SHORT_WINDOW, Meter, short_window
from carbonledger.measure.base import J_PER_KWH
from carbonledger.measure.nvml_source import open_gpu_source
from carbonledger.testing import FakeClock


class SteppingCounter:
    """A counter that moves every ``period_s`` from ``phase_s``, on a fake clock."""

    def __init__(self, period_s: float, phase_s: float) -> None:
        self.now = 0.0
        self.period_s, self.phase_s = period_s, phase_s

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def read(self) -> float:
        if self.now < self.phase_s:
            return 0.0
        return 1.0 + (self.now - self.phase_s) // self.period_s


def test_the_update_period_is_measured_from_the_first_change() -> None:
    counter = SteppingCounter(period_s=0.1, phase_s=0.037)
    measured = short_window.probe_update_period_s(
        counter.read, budget_s=0.3, clock=counter.clock, sleep=counter.sleep
    )
    assert measured == pytest.approx(0.1, abs=2 * short_window.PROBE_POLL_S)
    assert counter.now < 0.3  # stopped at the second change, not at the budget


def test_a_counter_that_does_not_move_twice_gives_no_period_and_the_budget_is_assumed() -> None:
    counter = SteppingCounter(period_s=1.0, phase_s=0.05)
    measured = short_window.probe_update_period_s(
        counter.read, budget_s=0.3, clock=counter.clock, sleep=counter.sleep
    )
    assert measured is None
    assert short_window.assumed_period_s(measured, 0.3) == 0.3  # a safe upper guess
    assert short_window.assumed_period_s(None, 0.0) is None  # probe skipped: never interpolate
    assert short_window.probe_update_period_s(counter.read, budget_s=0.0) is None


def _gpu_source(monkeypatch: pytest.MonkeyPatch, period_s: float) -> Any:
    monkeypatch.setattr(short_window, "probe_update_period_s", lambda read, **kw: period_s)
    monkeypatch.setattr(short_window, "PROBE_BUDGET_S", 0.3)
    source, _ = open_gpu_source()
    assert source is not None
    return source


def test_a_window_shorter_than_the_period_is_power_times_duration(
    one_gpu: FakeGpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _gpu_source(monkeypatch, period_s=0.1)
    clock = FakeClock()
    meter = Meter([source], clock=clock)
    window = meter.open_window()
    assert source.counter_period_s == pytest.approx(0.1)
    one_gpu.power_mw[0] = 300_000
    clock.advance(0.02)  # 20 ms: the counter has not moved
    gpu = window.close().components["gpu"]
    assert gpu.method == METHOD_SHORT_WINDOW and gpu.measured
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(300.0 * 0.02)  # never 0 J
    assert gpu.avg_power_w == pytest.approx(300.0)


def test_a_short_window_over_a_counter_step_is_not_charged_the_whole_step(
    one_gpu: FakeGpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _gpu_source(monkeypatch, period_s=0.1)
    clock = FakeClock()
    window = Meter([source], clock=clock).open_window()
    one_gpu.energy_mj[0] += 30_000  # one 100 ms step of 300 W landed in the window
    clock.advance(0.01)
    gpu = window.close().components["gpu"]
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(250.0 * 0.01)


def test_a_window_longer_than_the_period_reads_the_counter(
    one_gpu: FakeGpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _gpu_source(monkeypatch, period_s=0.1)
    clock = FakeClock()
    window = Meter([source], clock=clock).open_window()
    one_gpu.energy_mj[0] += 75_000
    clock.advance(0.3)
    gpu = window.close().components["gpu"]
    assert gpu.method == METHOD_NVML_COUNTER
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(75.0)


def test_a_short_window_on_a_shared_gpu_keeps_its_last_share(
    one_gpu: FakeGpus, fake_pids: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from measure_fakes import PID_C

    monkeypatch.setattr(short_window, "probe_update_period_s", lambda read, **kw: 0.1)
    monkeypatch.setattr(short_window, "PROBE_BUDGET_S", 0.3)
    source, _ = open_gpu_source(attribution="process")
    assert source is not None
    clock = FakeClock()
    meter = Meter([source], clock=clock)
    long = meter.open_window()
    one_gpu.push_util(0, {source.pid: 25, PID_C: 75})
    one_gpu.energy_mj[0] += 100_000
    clock.advance(1.0)
    assert long.read().components["gpu"].share == pytest.approx(0.25)
    short = meter.open_window()
    clock.advance(0.05)
    gpu = short.close().components["gpu"]
    assert gpu.method == METHOD_SHORT_WINDOW
    assert gpu.energy_kwh * J_PER_KWH == pytest.approx(250.0 * 0.05 * 0.25)
    assert gpu.remainder_kwh * J_PER_KWH == pytest.approx(250.0 * 0.05 * 0.75)
