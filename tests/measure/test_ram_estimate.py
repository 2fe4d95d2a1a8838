"""RAM: 0.3725 W/GB (Green Algorithms) unless RAPL DRAM is readable."""

from __future__ import annotations

import time

import psutil
import pytest

from carbonledger.measure import METHOD_RAM_ESTIMATE, Meter
from carbonledger.measure.ram import W_PER_GB, RamEstimateSource, total_ram_gb
from carbonledger.testing import FakeClock


def test_green_algorithms_coefficient() -> None:
    assert W_PER_GB == pytest.approx(0.3725)


def test_energy_is_power_per_gb_times_time() -> None:
    clock = FakeClock()
    source = RamEstimateSource(64.0, clock=clock)
    assert source.energy_j() == 0.0  # not started
    source.start()
    clock.advance(100.0)
    assert source.energy_j() == pytest.approx(64 * 0.3725 * 100)
    source.close()
    clock.advance(100.0)
    assert source.energy_j() == pytest.approx(64 * 0.3725 * 100)  # frozen at close


def test_default_meter_charges_the_installed_memory() -> None:
    meter = Meter()
    window = meter.open_window()
    time.sleep(0.3)
    ram = window.close().components["ram"]
    meter.close()
    installed_gb = psutil.virtual_memory().total / 2**30
    assert total_ram_gb() == pytest.approx(installed_gb)
    assert ram.method == METHOD_RAM_ESTIMATE and not ram.measured
    assert ram.avg_power_w == pytest.approx(installed_gb * 0.3725, rel=1e-3)
