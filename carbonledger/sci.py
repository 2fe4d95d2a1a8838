"""Software Carbon Intensity: ``SCI = ((E x I) + M) / R`` (GSF SCI, ISO/IEC 21031:2024).

``E x I`` is the operational CO2e from :func:`carbonledger.footprint.co2e_kg` (facility energy
``E x PUE`` times the grid intensity), ``M`` the embodied share
(:func:`carbonledger.embodied.amortised_co2e_kg`), ``R`` the functional units: requests of a
serving model version, or 1 per training run. The ledger's ``v_sci`` applies the same rule;
operational and embodied stay visible beside the score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from carbonledger.footprint import co2e_kg
from carbonledger.uncertainty import Contribution, Range, to_range


@dataclass(frozen=True, slots=True)
class SciScore:
    """An SCI score with its terms.

    Attributes:
        operational_co2e_kg: ``E x PUE x I / 1000`` (kg CO2e, Scope 2 location-based).
        embodied_co2e_kg: ``M`` (kg CO2e, Scope 3).
        functional_units: ``R`` (requests, runs...).
        unit: what one functional unit is (``request``, ``run``).
        sci_kg_per_unit: ``(operational + embodied) / R``.
        range_kg_per_unit: the score with its range (the terms' contributions, combined).
    """

    operational_co2e_kg: float
    embodied_co2e_kg: float
    functional_units: float
    unit: str
    sci_kg_per_unit: float
    range_kg_per_unit: Range


def sci(
    *,
    energy_kwh: float,
    intensity_g_per_kwh: float,
    embodied_co2e_kg: float,
    functional_units: float,
    pue: float = 1.0,
    unit: str = "unit",
    contributions: Iterable[Contribution] = (),
) -> SciScore:
    """``SCI = ((E x I) + M) / R``.

    Args:
        energy_kwh: ``E``, IT energy of the work (kWh); the PUE brings it to the facility.
        intensity_g_per_kwh: ``I``, location-based grid intensity (gCO2e/kWh).
        embodied_co2e_kg: ``M``, the embodied share of the hardware (kg CO2e).
        functional_units: ``R`` (> 0).
        pue: power usage effectiveness (1.0 when ``E`` is already facility energy).
        unit: name of the functional unit.
        contributions: error contributions of the numerator (operational and embodied), for
            the range; none gives a zero-width range.

    Raises:
        ValueError: ``functional_units`` is not above 0.
    """
    if not functional_units > 0:
        raise ValueError(f"R (functional units) must be above 0, got {functional_units!r}")
    operational = co2e_kg(energy_kwh, pue, intensity_g_per_kwh)
    total = operational + embodied_co2e_kg
    whole = to_range(total, contributions)
    per = Range(
        total / functional_units,
        whole.low_kg / functional_units,
        whole.high_kg / functional_units,
        whole.relative_uncertainty,
    )
    return SciScore(
        operational_co2e_kg=operational,
        embodied_co2e_kg=embodied_co2e_kg,
        functional_units=functional_units,
        unit=unit,
        sci_kg_per_unit=per.value_kg,
        range_kg_per_unit=per,
    )
