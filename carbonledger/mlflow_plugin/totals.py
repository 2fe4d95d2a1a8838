"""The ``carbon/*`` totals of a scope (a run, a node, an inference run) from its energy.

:class:`Usage` is the cumulative energy per component, duration and peak power of a scope;
:func:`derived_metrics` turns it into the public totals (docs/plugin.md) with the process's
grid intensity and PUE, through the one CO2e formula (:func:`carbonledger.footprint.co2e_kg`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from carbonledger.contract import (
    COMPONENTS,
    M_AVG_POWER_W,
    M_CO2E_KG,
    M_COMPONENT_ENERGY_KWH,
    M_DURATION_S,
    M_ENERGY_KWH,
    M_FACILITY_ENERGY_KWH,
    M_INTENSITY_G_PER_KWH,
    M_PEAK_POWER_W,
    M_PUE,
    average_power_w,
)
from carbonledger.footprint import footprint


@dataclass
class Usage:
    """Energy and power of one scope (a run, a node, an inference run) so far.

    Attributes:
        energy_kwh: cumulative energy per component (kWh).
        duration_s: how long the scope has been metered.
        peak_power_w: highest average power over one accounting interval (W).
    """

    energy_kwh: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    peak_power_w: float = 0.0

    @property
    def it_energy_kwh(self) -> float:
        """Sum over components."""
        return sum(self.energy_kwh.values())

    def add(self, energy_kwh: Mapping[str, float], duration_s: float) -> None:
        """Add one interval: its energy per component and its length (the peak follows)."""
        for c, v in energy_kwh.items():
            self.energy_kwh[c] = self.energy_kwh.get(c, 0.0) + v
        self.duration_s += duration_s
        self.peak_power_w = peak_power_w(self.peak_power_w, energy_kwh, duration_s)


def peak_power_w(peak_w: float, energy_kwh: Mapping[str, float], interval_s: float) -> float:
    """The peak power after an interval: the larger of ``peak_w`` and its average power."""
    if interval_s <= 0:
        return peak_w
    return max(peak_w, average_power_w(sum(energy_kwh.values()), interval_s))


def derived_metrics(usage: Usage) -> dict[str, float]:
    """The ``carbon/*`` totals of one scope: energy, PUE, CO2e, duration and power."""
    from carbonledger.mlflow_plugin.factors import get_factors

    f = get_factors()
    fp = footprint(usage.it_energy_kwh, f.grid, f.pue)
    avg_w = average_power_w(usage.it_energy_kwh, usage.duration_s)
    out = {M_COMPONENT_ENERGY_KWH[c]: usage.energy_kwh.get(c, 0.0) for c in COMPONENTS}
    out.update(
        {
            M_ENERGY_KWH: fp.energy_kwh,
            M_PUE: fp.pue,
            M_FACILITY_ENERGY_KWH: fp.facility_energy_kwh,
            M_INTENSITY_G_PER_KWH: fp.intensity_g_per_kwh,
            M_CO2E_KG: fp.co2e_kg,
            M_DURATION_S: usage.duration_s,
            M_AVG_POWER_W: avg_w,
            M_PEAK_POWER_W: max(usage.peak_power_w, avg_w),
        }
    )
    return out
