"""How sure a figure is: documented relative uncertainties per method, combined, as a range.

Every energy method (``carbon.methods`` values), intensity method and embodied source has a
relative *standard* uncertainty ``u`` (about one standard deviation, as a fraction of the
figure), each with its source in docs/methodology.md ("Uncertainty"). They combine by
first-order propagation of error:

* An error source contributes an absolute standard uncertainty ``sigma = u x (the kg that
  depend on it)``: energy component ``c`` contributes ``u_c x co2e_c`` (the CO2e of that
  component's energy), the intensity ``u_I x co2e`` (all of it), an embodied figure
  ``u_M x M``.
* Contributions with the **same key** (the same method, the same dataset) are fully
  correlated and add linearly; different keys are independent and add in quadrature:
  ``sigma = sqrt(sum over keys of (sum of that key's sigmas)^2)``. Within one run every
  component, the intensity and the embodied figure are different error sources, so a run's
  range is the plain quadrature of its independent errors. Across the runs of a total a
  method's error repeats (a sensor's bias, a model's bias, a yearly average's), so it is not
  averaged away: splitting work into more runs never narrows its range.
* A range is multiplicative: ``low = x / (1 + u)``, ``high = x x (1 + u)`` with ``u =
  sigma / x``, so it never goes below zero and an uncertainty of 100% reads "half to double";
  for small ``u`` it is ``x +- u x x`` to first order.

PUE and the lifetime are taken as exact (they are choices or stated figures, not
measurements); the methodology page says so. Pure functions; importing this module reads
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from carbonledger import contract as c
from carbonledger.contract import G_PER_KG

# --- relative standard uncertainties (sources: docs/methodology.md "Uncertainty") ----------
ENERGY_UNCERTAINTY: Mapping[str, float] = {
    c.METHOD_NVML_COUNTER: 0.05,
    c.METHOD_AMDSMI_COUNTER: 0.05,
    c.METHOD_NVML_POWER: 0.10,
    c.METHOD_AMDSMI_POWER: 0.10,
    c.METHOD_SHORT_WINDOW: 0.25,
    c.METHOD_NVML_PROCESS_SHARE: math.hypot(0.05, 0.10),
    c.METHOD_NVML_MIG_SHARE: math.hypot(0.05, 0.15),
    c.METHOD_NVML_EVEN_SHARE: math.hypot(0.05, 0.30),
    c.METHOD_AMDSMI_EVEN_SHARE: math.hypot(0.05, 0.30),
    c.METHOD_RAPL: 0.05,
    c.METHOD_RAM_RAPL: 0.10,
    c.METHOD_CPU_ESTIMATE: 0.35,
    c.METHOD_RAM_ESTIMATE: 0.50,
    c.METHOD_CODECARBON: 0.40,
    c.METHOD_CONFIGURED_POWER: 0.50,
    c.METHOD_RATED_POWER: 0.35,
    c.METHOD_REQUESTS_BENCH: 0.50,
}
"""Energy method -> relative standard uncertainty of the energy it reports."""
UNKNOWN_METHOD_UNCERTAINTY = 0.50
"""A method this table does not know (a newer plugin, another tool): as a rough estimate."""

INTENSITY_UNCERTAINTY: Mapping[str, float] = {
    c.INTENSITY_HOURLY: 0.10,
    c.INTENSITY_HOURLY_PROFILE: 0.25,
    c.INTENSITY_YEARLY: 0.30,
    c.INTENSITY_EXPLICIT: 0.30,
    c.INTENSITY_WORLD_DEFAULT: 1.00,
}
"""Intensity method -> relative standard uncertainty of the factor applied to one run."""

EMBODIED_CCF_UNCERTAINTY = 0.50
"""Cloud Carbon Footprint's linear model (per instance or per component)."""
EMBODIED_LCA_UNCERTAINTY = 0.15
"""A process LCA of the product itself (a Hubblo card, a vendor's product footprint)."""
EMBODIED_NEAREST_CARD_UNCERTAINTY = 0.20
"""Added in quadrature when a GPU takes the figure of the study's nearest card."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """One error source's absolute standard uncertainty in a figure.

    Attributes:
        key: the error source (``energy:nvml-energy-counter``, ``intensity:yearly``,
            ``embodied:ccf-instance``): equal keys are fully correlated.
        sigma_kg: its standard uncertainty (kg CO2e).
    """

    key: str
    sigma_kg: float


@dataclass(frozen=True, slots=True)
class Range:
    """A figure with its range.

    Attributes:
        value_kg: the figure (kg CO2e).
        low_kg: ``value_kg / (1 + relative_uncertainty)``.
        high_kg: ``value_kg x (1 + relative_uncertainty)``.
        relative_uncertainty: combined ``sigma / value`` (0 for a zero figure).
    """

    value_kg: float
    low_kg: float
    high_kg: float
    relative_uncertainty: float

    @property
    def formatted(self) -> str:
        """``12.3 kg (10.1-14.9)``."""
        return format_range(self.value_kg, self.low_kg, self.high_kg)


def energy_uncertainty(method: str | None) -> float:
    """Relative standard uncertainty of energy measured or estimated by ``method``.

    Methods that changed during a run are joined by ``+`` (``nvml-energy-counter+
    nvml-process-share``): the least certain of them counts.
    """
    parts = (method or "").split("+")
    return max(ENERGY_UNCERTAINTY.get(p, UNKNOWN_METHOD_UNCERTAINTY) for p in parts)


def intensity_uncertainty(intensity_method: str) -> float:
    """Relative standard uncertainty of a factor applied by ``intensity_method``.

    Raises:
        KeyError: an unknown intensity method (one of ``contract.INTENSITY_METHODS``).
    """
    return INTENSITY_UNCERTAINTY[intensity_method]


def intensity_method_of(resolved_by: str) -> str:
    """The intensity method of a yearly-resolved factor, from ``GridFactor.resolved_by``.

    ``world-default`` -> world default; ``explicit`` -> explicit; ``live`` -> hourly (a live
    provider answers for the current hour); anything else (zone, cloud region, country, a
    live fallback) -> yearly. Hourly matching in the ledger records its own method.
    """
    from carbonledger.intensity.factors import (
        RESOLVED_EXPLICIT,
        RESOLVED_LIVE,
        RESOLVED_WORLD_DEFAULT,
    )

    return {
        RESOLVED_WORLD_DEFAULT: c.INTENSITY_WORLD_DEFAULT,
        RESOLVED_EXPLICIT: c.INTENSITY_EXPLICIT,
        RESOLVED_LIVE: c.INTENSITY_HOURLY,
    }.get(resolved_by, c.INTENSITY_YEARLY)


def combine(contributions: Iterable[Contribution]) -> float:
    """Combined standard uncertainty (kg): linear within a key, quadrature across keys."""
    by_key: dict[str, float] = {}
    for item in contributions:
        by_key[item.key] = by_key.get(item.key, 0.0) + abs(item.sigma_kg)
    return math.sqrt(sum(s * s for s in by_key.values()))


def to_range(value_kg: float, contributions: Iterable[Contribution]) -> Range:
    """The range of ``value_kg`` given its error contributions."""
    sigma = combine(contributions)
    relative = sigma / value_kg if value_kg > 0 else 0.0
    return relative_range(value_kg, relative)


def relative_range(value_kg: float, relative_uncertainty: float) -> Range:
    """The range of ``value_kg`` with one relative standard uncertainty."""
    factor = 1.0 + relative_uncertainty
    return Range(value_kg, value_kg / factor, value_kg * factor, relative_uncertainty)


@dataclass(frozen=True, slots=True)
class OperationalRecord:
    """What one record's operational CO2e (a run, a serving window) is made of.

    Attributes:
        energy_kwh: IT energy per component (kWh).
        methods: component -> energy method (``carbon.methods``; a missing one is unknown).
        pue: PUE applied (exact).
        intensity_g_per_kwh: grid intensity applied.
        intensity_method: ``hourly``, ``hourly-profile-estimate``, ``yearly``, ``explicit``
            or ``world-default``.
    """

    energy_kwh: Mapping[str, float]
    methods: Mapping[str, str]
    pue: float
    intensity_g_per_kwh: float
    intensity_method: str

    @property
    def co2e_kg(self) -> float:
        """``sum(energy_kwh) x pue x intensity / 1000`` (carbonledger.footprint.co2e_kg)."""
        from carbonledger.footprint import co2e_kg

        return co2e_kg(sum(self.energy_kwh.values()), self.pue, self.intensity_g_per_kwh)

    def contributions(self) -> list[Contribution]:
        """One contribution per component's energy method, and one for the intensity."""
        from carbonledger.footprint import co2e_kg

        out = []
        for component, kwh in sorted(self.energy_kwh.items()):
            method = self.methods.get(component)
            kg = co2e_kg(kwh, self.pue, self.intensity_g_per_kwh)
            sigma = energy_uncertainty(method) * kg
            out.append(Contribution(f"energy:{method or 'unknown'}", sigma))
        u_i = intensity_uncertainty(self.intensity_method)
        out.append(Contribution(f"intensity:{self.intensity_method}", u_i * self.co2e_kg))
        return out

    def range(self) -> Range:
        """The CO2e with its range (the record's independent errors in quadrature)."""
        return to_range(self.co2e_kg, self.contributions())


def total_range(records: Iterable[tuple[float, Iterable[Contribution]]]) -> Range:
    """The range of a total over records, each ``(value_kg, its contributions)``.

    The rule: a key's contributions add linearly across records (the same method's error
    repeats), different keys add in quadrature.
    """
    value = 0.0
    everything: list[Contribution] = []
    for value_kg, parts in records:
        value += value_kg
        everything.extend(parts)
    return to_range(value, everything)


def _three(value: float) -> str:
    """Three significant figures without exponent; thousands separated from 100 up."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    decimals = 2 - math.floor(math.log10(abs(value)))
    return f"{value:.{decimals}f}"


def format_range(value_kg: float, low_kg: float, high_kg: float, unit: str = "kg") -> str:
    """``12.3 kg (10.1-14.9)``: three significant figures, the range in brackets."""
    return f"{_three(value_kg)} {unit} ({_three(low_kg)}-{_three(high_kg)})"


def format_range_g(value_kg: float, low_kg: float, high_kg: float) -> str:
    """The same range in grams (``28.5 g (19.0-42.8)``), for small figures."""
    return format_range(value_kg * G_PER_KG, low_kg * G_PER_KG, high_kg * G_PER_KG, unit="g")


def format_range_auto(value_kg: float, low_kg: float, high_kg: float) -> str:
    """In kg from 1 kg up, in grams below (``334 g (222-501)``)."""
    if abs(value_kg) >= 1:
        return format_range(value_kg, low_kg, high_kg)
    return format_range_g(value_kg, low_kg, high_kg)
