"""Charging a window's energy to versions: idle by time share, active by request share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonledger.inference.split import (
    IDLE_BASELINE,
    IDLE_BUSY_TIME,
    IDLE_NO_REQUESTS,
    VersionActivity,
    per_request,
    percentiles_ms,
    split_window,
)


def test_bloom_deployment_per_request_figures_fully_loaded() -> None:
    # Luccioni et al. 2022: BLOOM's API on 16 A100s for 18 days served 230,768 requests
    # with 914 kWh, on a 394 gCO2e/kWh grid.
    requests, energy_kwh, intensity = 230_768, 914.0, 394.0

    wh = per_request(energy_kwh, requests)
    g = energy_kwh * intensity / requests

    assert wh == pytest.approx(3.96, abs=0.005)
    assert g == pytest.approx(1.56, abs=0.005)


def test_idle_goes_by_time_share_and_active_by_request_share() -> None:
    energy = {"gpu": 0.010, "cpu": 0.002}  # 12 Wh in a minute
    a = VersionActivity("a", requests=30, busy_s=15.0, hosted_s=60.0)
    b = VersionActivity("b", requests=10, busy_s=15.0, hosted_s=30.0)  # loaded half the window

    split = split_window(energy, 60.0, [a, b])

    assert split.idle_method == IDLE_BUSY_TIME
    assert split.idle_energy_kwh == pytest.approx(0.012 * 0.5)  # busy 30 of 60 s
    ca, cb = split.charges
    assert ca.idle_energy_kwh == pytest.approx(0.006 * 2 / 3)
    assert cb.idle_energy_kwh == pytest.approx(0.006 * 1 / 3)
    assert ca.active_energy_kwh == pytest.approx(0.006 * 3 / 4)
    assert cb.active_energy_kwh == pytest.approx(0.006 * 1 / 4)
    assert ca.energy_kwh["gpu"] + cb.energy_kwh["gpu"] == pytest.approx(0.010)
    assert ca.energy_kwh["cpu"] / ca.energy_kwh["gpu"] == pytest.approx(0.2)


def test_a_window_without_requests_is_all_idle_and_still_charged() -> None:
    split = split_window({"gpu": 0.005}, 60.0, [VersionActivity("a", 0, 0.0, 60.0)])

    assert split.idle_method == IDLE_NO_REQUESTS
    [charge] = split.charges
    assert (charge.idle_energy_kwh, charge.active_energy_kwh) == (pytest.approx(0.005), 0.0)


def test_a_known_idle_power_is_the_baseline_and_the_rest_is_active() -> None:
    # 300 W idle over 60 s = 5 Wh; the window drew 8 Wh.
    split = split_window(
        {"gpu": 0.008}, 60.0, [VersionActivity("a", 100, 1.0, 60.0)], idle_power_w=300.0
    )

    assert split.idle_method == IDLE_BASELINE
    assert split.idle_energy_kwh == pytest.approx(0.005)
    assert split.active_energy_kwh == pytest.approx(0.003)


def test_idle_is_capped_at_the_window_energy_and_busy_time_at_the_window() -> None:
    low = split_window({"gpu": 0.001}, 60.0, [VersionActivity("a", 5, 1.0, 60.0)], idle_power_w=1e3)
    assert (low.idle_energy_kwh, low.active_energy_kwh) == (pytest.approx(0.001), 0.0)
    # concurrent requests: 120 s of latency in a 60 s window is a fully busy window
    busy = split_window({"gpu": 0.001}, 60.0, [VersionActivity("a", 5, 120.0, 60.0)])
    assert busy.idle_energy_kwh == pytest.approx(0.0)


@given(
    energy=st.dictionaries(
        st.sampled_from(["gpu", "cpu", "ram"]), st.floats(0.0, 10.0), min_size=1
    ),
    duration=st.floats(0.0, 3600.0),
    versions=st.lists(
        st.tuples(st.integers(0, 1000), st.floats(0.0, 5000.0), st.floats(0.0, 3600.0)),
        min_size=1,
        max_size=6,
    ),
    idle_power=st.one_of(st.none(), st.floats(0.0, 5000.0)),
)
def test_charges_add_up_to_the_window_energy_per_component(
    energy: dict[str, float],
    duration: float,
    versions: list[tuple[int, float, float]],
    idle_power: float | None,
) -> None:
    activity = [VersionActivity(i, r, b, h) for i, (r, b, h) in enumerate(versions)]

    split = split_window(energy, duration, activity, idle_power_w=idle_power)

    for component, total in energy.items():
        assert sum(c.energy_kwh[component] for c in split.charges) == pytest.approx(
            total, rel=1e-9, abs=1e-12
        )
    assert sum(c.total_kwh for c in split.charges) == pytest.approx(
        sum(energy.values()), rel=1e-9, abs=1e-12
    )
    assert all(c.idle_energy_kwh >= 0 and c.active_energy_kwh >= -1e-15 for c in split.charges)


def test_latency_percentiles_are_nearest_rank_in_ms() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms

    pct = percentiles_ms(latencies)

    assert pct == {50.0: pytest.approx(50.0), 95.0: pytest.approx(95.0), 99.0: pytest.approx(99.0)}
    assert percentiles_ms([]) is None
    assert per_request(1.0, 0) is None
