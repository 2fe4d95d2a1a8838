"""The CPU estimate: TDP table, model P = TDP x (idle + (1 - idle) x u), unknown CPUs."""

from __future__ import annotations

import time
from importlib import resources
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonledger.measure import METHOD_CPU_ESTIMATE, Meter, detect_sources
from carbonledger.measure import cpu_estimate as ce
from carbonledger.settings import Settings
from carbonledger.testing import FakeClock


def _times(busy: float, idle: float) -> SimpleNamespace:
    return SimpleNamespace(
        user=busy * 0.7,
        nice=0.0,
        system=busy * 0.3,
        idle=idle,
        iowait=0.0,
        irq=0.0,
        softirq=0.0,
        steal=5.0,
    )


def test_the_table_cites_its_source_and_licence() -> None:
    text = resources.files("carbonledger.measure").joinpath("data/cpu_tdp.csv").read_text()
    header = " ".join(line for line in text.splitlines() if line.startswith("#"))
    assert "CodeCarbon" in header and "MIT" in header and "spec sheets" in header


def test_the_table_covers_common_server_and_desktop_families() -> None:
    names = [name for name, _ in ce.load_tdp_table().values()]
    for family in ("Intel Xeon", "Intel Core", "AMD EPYC", "AMD Ryzen"):
        assert sum(n.startswith(family) for n in names) > 50, family
    assert all(1 <= tdp <= 500 for _, tdp in ce.load_tdp_table().values())


@pytest.mark.parametrize(
    ("reported", "expected", "low_w", "high_w"),
    [
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "Intel Xeon Platinum 8380", 200, 300),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763", 200, 300),
        ("AMD Ryzen 9 7950X 16-Core Processor", "AMD Ryzen 9 7950X", 100, 200),
        ("13th Gen Intel(R) Core(TM) i9-13900K", "Intel Core i9-13900K", 100, 200),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel Xeon Gold 6248R", 150, 250),
    ],
)
def test_lookup_of_real_cpuinfo_strings(
    reported: str, expected: str, low_w: float, high_w: float
) -> None:
    found = ce.lookup_tdp(reported)
    assert found is not None
    assert found[0] == expected
    assert low_w <= found[1] <= high_w


@pytest.mark.parametrize("reported", ["AMD EPYC", "Intel Xeon Processor (Skylake)", "", None])
def test_family_only_or_empty_names_match_nothing(reported: str | None) -> None:
    assert ce.lookup_tdp(reported) is None


def test_unknown_cpu_gets_a_per_thread_constant() -> None:
    tdp = ce.resolve_tdp("AMD EPYC", 2, None)
    assert tdp.source == "per-thread"
    assert tdp.tdp_w == pytest.approx(2 * ce.W_PER_THREAD)
    assert ce.resolve_tdp("AMD EPYC", 64, None).tdp_w == pytest.approx(32 * tdp.tdp_w)
    assert ce.resolve_tdp("AMD EPYC 7763", 2, 95.0) == ce.TdpMatch(95.0, "setting")


@given(st.floats(0, 1), st.floats(0, 1), st.floats(1, 1000))
def test_model_is_monotonic_and_between_idle_floor_and_tdp(
    u1: float, u2: float, tdp: float
) -> None:
    lo, hi = sorted((u1, u2))
    p_lo, p_hi = ce.cpu_power_w(tdp, lo), ce.cpu_power_w(tdp, hi)
    assert tdp * ce.IDLE_FRACTION - 1e-9 <= p_lo <= p_hi <= tdp + 1e-9


def test_model_end_points_and_clipping() -> None:
    assert ce.cpu_power_w(200.0, 0.0) == pytest.approx(200.0 * ce.IDLE_FRACTION)
    assert ce.cpu_power_w(200.0, 1.0) == pytest.approx(200.0)
    assert ce.cpu_power_w(200.0, 1.7) == ce.cpu_power_w(200.0, 1.0)
    assert ce.cpu_power_w(200.0, -0.2) == ce.cpu_power_w(200.0, 0.0)
    half = ce.cpu_power_w(200.0, 0.5)
    assert half == pytest.approx((ce.cpu_power_w(200.0, 0.0) + 200.0) / 2)


def test_source_integrates_scripted_utilisation() -> None:
    clock = FakeClock()
    state = {"busy": 100.0, "idle": 100.0}
    source = ce.CpuEstimateSource(
        100.0, cpu_times=lambda: _times(state["busy"], state["idle"]), clock=clock
    )
    source.start()
    clock.advance(10.0)
    state["busy"] += 10.0  # 2 CPUs x 10 s = 20 CPU-s: 50 % busy
    state["idle"] += 10.0
    source.sample()
    clock.advance(5.0)
    state["idle"] += 10.0  # fully idle
    e = source.energy_j()
    assert e == pytest.approx(ce.cpu_power_w(100, 0.5) * 10 + ce.cpu_power_w(100, 0.0) * 5)
    assert source.pop_peak_power_w() == pytest.approx(ce.cpu_power_w(100, 0.5))
    assert source.pop_peak_power_w() == 0.0


def test_busy_and_total_leave_steal_out() -> None:
    busy, total = ce.busy_and_total_s(_times(30.0, 70.0))
    assert (busy, total) == pytest.approx((30.0, 100.0))


def test_real_busy_loop_draws_more_than_idle_floor() -> None:
    meter = Meter([ce.CpuEstimateSource(100.0, period_s=0.2)])
    window = meter.open_window()
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        sum(range(10_000))
    cpu = window.close().components["cpu"]
    meter.close()
    assert cpu.method == METHOD_CPU_ESTIMATE and not cpu.measured
    # One of at most 2 cores is busy for sure: utilisation is at least ~40 % here.
    # At most the TDP; 0.1 % for the two clock reads (samples vs window) on a loaded machine.
    assert 100.0 * ce.IDLE_FRACTION < cpu.avg_power_w <= 100.0 * 1.001
    assert cpu.avg_power_w >= ce.cpu_power_w(100.0, 0.35)


def test_detect_notes_an_unknown_cpu(mocker: Any, tmp_path: Any) -> None:
    mocker.patch("carbonledger.measure.detect.cpu_model_name", return_value="AMD EPYC")
    mocker.patch("carbonledger.measure.detect.psutil.cpu_count", return_value=2)
    sources, notes = detect_sources(Settings(rapl_root=tmp_path))
    cpu = next(s for s in sources if s.component == "cpu")
    assert isinstance(cpu, ce.CpuEstimateSource)
    assert cpu.tdp_w == pytest.approx(2 * ce.W_PER_THREAD) and cpu.tdp_source == "per-thread"
    assert any("'AMD EPYC' is not in the TDP table" in n for n in notes)


def test_detect_uses_the_tdp_setting_and_interval(mocker: Any, tmp_path: Any) -> None:
    mocker.patch("carbonledger.measure.detect.cpu_model_name", return_value="AMD EPYC 7763")
    s = Settings(rapl_root=tmp_path, cpu_tdp_w=42.0, estimate_interval_s=0.5)
    cpu = next(x for x in detect_sources(s)[0] if x.component == "cpu")
    assert isinstance(cpu, ce.CpuEstimateSource)
    assert cpu.tdp_w == 42.0 and cpu.sample_period_s == 0.5
    s = Settings(rapl_root=tmp_path)
    cpu = next(x for x in detect_sources(s)[0] if x.component == "cpu")
    assert isinstance(cpu, ce.CpuEstimateSource) and cpu.tdp_source == "table"
    assert 200 <= cpu.tdp_w <= 300
