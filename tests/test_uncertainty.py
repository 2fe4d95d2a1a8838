"""Ranges: documented per-method uncertainties, quadrature per run, correlated within a method."""

from __future__ import annotations

import math

import pytest

from carbonledger import contract as c
from carbonledger.uncertainty import (
    ENERGY_UNCERTAINTY,
    INTENSITY_UNCERTAINTY,
    Contribution,
    OperationalRecord,
    combine,
    energy_uncertainty,
    format_range,
    intensity_method_of,
    relative_range,
    total_range,
)


def test_every_measurement_method_of_the_contract_has_an_uncertainty() -> None:
    methods = [v for k, v in vars(c).items() if k.startswith("METHOD_") and isinstance(v, str)]
    assert methods and set(methods) <= set(ENERGY_UNCERTAINTY)
    assert set(c.INTENSITY_METHODS) == set(INTENSITY_UNCERTAINTY)
    assert energy_uncertainty("some-new-method") == 0.5  # unknown: as a rough estimate


def test_measured_beats_estimated() -> None:
    assert energy_uncertainty(c.METHOD_NVML_COUNTER) < energy_uncertainty(c.METHOD_NVML_POWER)
    assert energy_uncertainty(c.METHOD_RAPL) < energy_uncertainty(c.METHOD_CPU_ESTIMATE)
    assert energy_uncertainty(c.METHOD_RAM_RAPL) < energy_uncertainty(c.METHOD_RAM_ESTIMATE)
    assert INTENSITY_UNCERTAINTY[c.INTENSITY_HOURLY] < INTENSITY_UNCERTAINTY[c.INTENSITY_YEARLY]
    assert INTENSITY_UNCERTAINTY[c.INTENSITY_YEARLY] < INTENSITY_UNCERTAINTY["world-default"]


def test_one_run_is_the_quadrature_of_its_independent_errors() -> None:
    energy = {"gpu": 10.0, "cpu": 2.0, "ram": 0.5}
    methods = {"gpu": c.METHOD_NVML_COUNTER, "cpu": c.METHOD_RAPL, "ram": c.METHOD_RAM_ESTIMATE}
    r = OperationalRecord(
        energy_kwh=energy,
        methods=methods,
        pue=1.2,
        intensity_g_per_kwh=400.0,
        intensity_method=c.INTENSITY_YEARLY,
    ).range()
    # by hand: kg per component = kWh x 1.2 x 400 / 1000
    gpu, cpu, ram = 10 * 0.48, 2 * 0.48, 0.5 * 0.48
    total = gpu + cpu + ram
    sigma = math.sqrt(
        (0.05 * gpu) ** 2 + (0.05 * cpu) ** 2 + (0.50 * ram) ** 2 + (0.30 * total) ** 2
    )
    assert r.value_kg == pytest.approx(total)
    assert r.relative_uncertainty == pytest.approx(sigma / total)
    assert r.low_kg == pytest.approx(total / (1 + sigma / total))
    assert r.high_kg == pytest.approx(total * (1 + sigma / total))


def test_a_total_adds_a_methods_error_linearly_across_runs_and_other_methods_in_quadrature() -> (
    None
):
    def run(gpu_kwh: float, method: str, intensity: str) -> tuple[float, list[Contribution]]:
        record = OperationalRecord(
            energy_kwh={"gpu": gpu_kwh},
            methods={"gpu": method},
            pue=1.0,
            intensity_g_per_kwh=1000.0,
            intensity_method=intensity,
        )
        return record.co2e_kg, record.contributions()  # 1000 g/kWh: kg = kWh

    records = [
        run(3.0, c.METHOD_NVML_COUNTER, c.INTENSITY_HOURLY),
        run(5.0, c.METHOD_NVML_COUNTER, c.INTENSITY_HOURLY),
        run(2.0, c.METHOD_CPU_ESTIMATE, c.INTENSITY_YEARLY),
    ]
    r = total_range(records)
    counter = 0.05 * (3 + 5)  # same method: correlated, adds linearly
    hourly = 0.10 * (3 + 5)
    estimate = 0.35 * 2
    yearly = 0.30 * 2
    sigma = math.sqrt(counter**2 + hourly**2 + estimate**2 + yearly**2)
    assert r.value_kg == pytest.approx(10.0)
    assert r.relative_uncertainty == pytest.approx(sigma / 10.0)


def test_splitting_work_into_more_runs_never_narrows_its_range() -> None:
    one = [(8.0, [Contribution("energy:x", 0.8)])]
    split = [(1.0, [Contribution("energy:x", 0.1)]) for _ in range(8)]
    assert total_range(split).relative_uncertainty == pytest.approx(
        total_range(one).relative_uncertainty
    )


def test_combine_is_linear_within_a_key_and_quadrature_across_keys() -> None:
    parts = [Contribution("a", 3.0), Contribution("a", 1.0), Contribution("b", 3.0)]
    assert combine(parts) == pytest.approx(5.0)  # sqrt(4^2 + 3^2)


def test_a_range_is_multiplicative_and_never_below_zero() -> None:
    r = relative_range(10.0, 1.0)
    assert (r.low_kg, r.high_kg) == (5.0, 20.0)  # world default: half to double
    assert relative_range(0.0, 0.3).low_kg == 0.0


def test_format_is_three_significant_figures_with_the_range_in_brackets() -> None:
    assert format_range(12.3, 10.1, 14.9) == "12.3 kg (10.1-14.9)"
    assert relative_range(12.3, 0.21).formatted == "12.3 kg (10.2-14.9)"
    assert format_range(1234.0, 1010.0, 1490.0) == "1,234 kg (1,010-1,490)"
    assert format_range(0.0123, 0.0101, 0.0149) == "0.0123 kg (0.0101-0.0149)"


def test_intensity_method_of_a_yearly_resolution() -> None:
    assert intensity_method_of("zone") == c.INTENSITY_YEARLY
    assert intensity_method_of("country") == c.INTENSITY_YEARLY
    assert intensity_method_of("world-default") == c.INTENSITY_WORLD_DEFAULT
    assert intensity_method_of("explicit") == c.INTENSITY_EXPLICIT
    assert intensity_method_of("live") == c.INTENSITY_HOURLY
    assert intensity_method_of("zone+live-fallback") == c.INTENSITY_YEARLY


def test_methods_that_changed_during_a_run_count_the_least_certain() -> None:
    both = f"{c.METHOD_NVML_COUNTER}+{c.METHOD_NVML_PROCESS_SHARE}"
    assert energy_uncertainty(both) == energy_uncertainty(c.METHOD_NVML_PROCESS_SHARE)
