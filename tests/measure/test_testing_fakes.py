"""carbonledger.testing: the fake clock, fake sources and replay meter users test with."""

from __future__ import annotations

import pytest

from carbonledger.measure import EnergySource
from carbonledger.testing import FakeClock, FakeSource, fake_meter


def test_fake_source_is_an_energy_source() -> None:
    assert isinstance(FakeSource("gpu", 1.0, clock=FakeClock()), EnergySource)


def test_steps_are_integrated_exactly() -> None:
    source = FakeSource("cpu", [(0, 50.0), (10, 80.0)], clock=FakeClock())
    assert source.energy_at(5) == pytest.approx(250.0)
    assert source.energy_at(20) == pytest.approx(50 * 10 + 80 * 10)


@pytest.mark.parametrize(
    "steps", [[], [(1, 5.0)], [(0, 5.0), (0, 6.0)], [(0, 1.0), (5, 2.0), (3, 1.0)]]
)
def test_bad_steps_are_refused(steps: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError, match="steps"):
        FakeSource("gpu", steps, clock=FakeClock())


def test_clock_does_not_go_back() -> None:
    with pytest.raises(ValueError):
        FakeClock().advance(-1)


def test_docstring_example() -> None:
    clock = FakeClock()
    meter = fake_meter({"gpu": 300.0, "cpu": [(0, 50.0), (10, 80.0)]}, clock=clock)
    with meter.open_window() as window:
        clock.advance(20)
    assert window.close().energy_kwh == pytest.approx((300 * 20 + 50 * 10 + 80 * 10) / 3.6e6)
