"""From energy to CO2e: ``E_facility = E_it x PUE`` and ``CO2e = E_facility x I``.

The one place the operational formula lives; the plugin, the CLI and the inference meter
call it, and the ledger applies the same rule to versioned emission factors.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbonledger.intensity.factors import GridFactor, PueFactor


@dataclass(frozen=True, slots=True)
class Footprint:
    """Energy and emissions of some work, with the factors used.

    Attributes:
        energy_kwh: IT energy (GPU + CPU + RAM).
        pue: power usage effectiveness applied.
        facility_energy_kwh: ``energy_kwh * pue``.
        intensity_g_per_kwh: grid intensity applied (location-based unless stated).
        co2e_kg: ``facility_energy_kwh * intensity_g_per_kwh / 1000``.
        grid: the grid factor with its provenance.
        pue_factor: the PUE with its provenance.
    """

    energy_kwh: float
    pue: float
    facility_energy_kwh: float
    intensity_g_per_kwh: float
    co2e_kg: float
    grid: GridFactor
    pue_factor: PueFactor


def footprint(energy_kwh: float, grid: GridFactor, pue: PueFactor) -> Footprint:
    """Apply PUE and grid intensity to an IT energy figure in kWh."""
    facility_kwh = energy_kwh * pue.value
    return Footprint(
        energy_kwh=energy_kwh,
        pue=pue.value,
        facility_energy_kwh=facility_kwh,
        intensity_g_per_kwh=grid.intensity_g_per_kwh,
        co2e_kg=facility_kwh * grid.intensity_g_per_kwh / 1000.0,
        grid=grid,
        pue_factor=pue,
    )
