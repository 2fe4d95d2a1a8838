"""``process`` attribution: CPU and RAM charged by the process tree's share; GPU per device."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from carbonledger.measure import Meter
from carbonledger.measure.attribution import ShareSnapshot, share_between
from carbonledger.measure.cpu_estimate import CpuEstimateSource, busy_and_total_s
from carbonledger.measure.ram import RamEstimateSource
from carbonledger.settings import Settings
from carbonledger.testing import FakeClock, FakeSource

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass"
HOLD = "b = bytearray({n}); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep({s})"


def _snap(t: float, tree: float, busy: float, rss_s: float, rss: float) -> ShareSnapshot:
    return ShareSnapshot(t, tree, busy, rss_s, rss)


def test_share_is_tree_cpu_time_over_machine_busy_time() -> None:
    cpu, ram = share_between(_snap(0, 1.0, 10.0, 0.0, 0.1), _snap(10, 4.0, 16.0, 2.0, 0.3))
    assert cpu == pytest.approx(3.0 / 6.0)
    assert ram == pytest.approx(2.0 / 10.0)


def test_share_is_clipped_and_safe_on_an_idle_machine() -> None:
    assert share_between(_snap(0, 0, 5, 0, 0.2), _snap(0, 0, 5, 0, 0.2)) == (0.0, 0.2)
    assert share_between(_snap(0, 0, 0, 0, 0), _snap(1, 9, 3, 5, 2))[0] == 1.0


def _machine_busy_s() -> float:
    return busy_and_total_s(psutil.cpu_times())[0]


def test_process_mode_charges_the_child_cpu_share() -> None:
    clock = FakeClock()
    gpu = FakeSource("gpu", 200.0, clock=clock)
    cpu = CpuEstimateSource(100.0, period_s=0.2)
    meter = Meter([gpu, cpu], attribution="process", settings=Settings(estimate_interval_s=0.2))
    busy_before = _machine_busy_s()
    mine_before = sum(psutil.Process().cpu_times()[:4])
    window = meter.open_window()
    subprocess.run([sys.executable, "-c", BURN.format(s=0.8)], check=True)  # a 0.8 CPU-s child
    clock.advance(10.0)
    result = window.close()
    busy_after = _machine_busy_s()
    mine_after = sum(psutil.Process().cpu_times()[:4])
    meter.close()
    share = result.components["cpu"].share
    independent = (mine_after - mine_before) / (busy_after - busy_before)
    assert 0.0 < share <= 1.0
    assert share == pytest.approx(independent, abs=0.15)
    assert result.attribution == "process"
    # GPU stays per device, whatever the process does.
    assert result.components["gpu"].share == 1.0
    assert result.components["gpu"].energy_kwh * 3.6e6 == pytest.approx(2000.0)


def test_process_mode_energy_is_device_energy_times_share() -> None:
    device_meter = Meter([CpuEstimateSource(100.0, period_s=0.2)], attribution="device")
    process_meter = Meter([CpuEstimateSource(100.0, period_s=0.2)], attribution="process")
    d, p = device_meter.open_window(), process_meter.open_window()
    subprocess.run([sys.executable, "-c", BURN.format(s=0.5)], check=True)
    rp, rd = p.close(), d.close()
    device_meter.close()
    process_meter.close()
    cpu_p, cpu_d = rp.components["cpu"], rd.components["cpu"]
    assert cpu_d.share == 1.0
    assert cpu_p.energy_kwh == pytest.approx(cpu_d.energy_kwh * cpu_p.share, rel=0.1)


def test_process_mode_charges_ram_by_resident_share() -> None:
    total = psutil.virtual_memory().total
    n = 300 * 2**20
    meter = Meter(
        [RamEstimateSource(total / 2**30)],
        attribution="process",
        settings=Settings(estimate_interval_s=0.1),
    )
    child = subprocess.Popen([sys.executable, "-c", HOLD.format(n=n, s=1.5)])
    try:
        time.sleep(0.5)  # let the child touch its pages
        own_before = psutil.Process().memory_info().rss
        window = meter.open_window()
        time.sleep(0.6)
        ram = window.close().components["ram"]
    finally:
        child.wait()
        meter.close()
    # The tree is this (pytest) process plus the child: after a long session this process alone
    # can hold gigabytes, so the bounds include its own resident set, read around the window.
    own_after = psutil.Process().memory_info().rss
    own_low, own_high = min(own_before, own_after), max(own_before, own_after)
    low, high = (n + own_low * 0.8) / total, (n * 1.5 + own_high * 1.3) / total + 0.01
    assert low * 0.8 < ram.share < high
    assert ram.avg_power_w == pytest.approx(total / 2**30 * 0.3725 * ram.share, rel=0.05)


def test_attribution_comes_from_settings_by_default() -> None:
    meter = Meter(
        [FakeSource("cpu", 1.0, clock=FakeClock())], settings=Settings(attribution="process")
    )
    assert meter.attribution == "process"
    assert Meter([], settings=Settings()).attribution == "device"
