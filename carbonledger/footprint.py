"""From energy to CO2e: ``E_facility = E_it x PUE`` and ``CO2e = E_facility x I``.

The one place the operational formula lives; the plugin, the CLI and the inference meter
call it, and the ledger applies the same rule to versioned emission factors.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbonledger.contract import G_PER_KG
from carbonledger.intensity.factors import GridFactor, PueFactor


def co2e_kg(energy_kwh: float, pue: float, intensity_g_per_kwh: float) -> float:
    """Operational CO2e in kg of IT energy ``energy_kwh`` at ``pue`` and a grid intensity.

    ``energy_kwh x pue`` is the facility energy; times ``intensity_g_per_kwh`` (gCO2e/kWh) it
    gives grams, so the result is ``energy_kwh x pue x intensity_g_per_kwh / 1000``. Every
    CO2e figure computed in Python (plugin, inference meter, CLI, estimates) comes from here.
    """
    return energy_kwh * pue * intensity_g_per_kwh / G_PER_KG


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
    return Footprint(
        energy_kwh=energy_kwh,
        pue=pue.value,
        facility_energy_kwh=energy_kwh * pue.value,
        intensity_g_per_kwh=grid.intensity_g_per_kwh,
        co2e_kg=co2e_kg(energy_kwh, pue.value, grid.intensity_g_per_kwh),
        grid=grid,
        pue_factor=pue,
    )
