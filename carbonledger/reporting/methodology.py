"""Methodology and carbon-aware what-if figures: formulas, factors in use, defaults, moves.

What-if: the period's facility energy (training + inference) priced at another zone's
latest location-based factor in the ledger (the shipped yearly tables seeded into
``emission_factors``). Time-of-day shifting is ``carbonledger.reporting.timing`` (hourly
factors seeded into ``hourly_emission_factors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd
from sqlalchemy import Engine

from carbonledger.reporting.db import frame
from carbonledger.reporting.periods import Period
from carbonledger.reporting.queries import totals
from carbonledger.reporting.rollups import weighted_intensity_sql

FORMULAS = (
    ("IT energy", "E_it = E_gpu + E_cpu + E_ram (kWh)"),
    ("Facility energy", "E_facility = E_it × PUE"),
    (
        "Location-based CO2e",
        "CO2e_loc = Σ_hours E_facility,h × I_h / 1000 (kg); I_h = the hour's factor (hourly), "
        "else profile ratio × I_grid(zone, year) (hourly-profile-estimate), else I_grid(zone, "
        "year) (yearly): the record's intensity_method",
    ),
    ("Yearly-only CO2e", "CO2e_loc_yearly = E_facility × I_grid(zone, year) / 1000 (kg)"),
    (
        "Market-based CO2e",
        "CO2e_mkt = Σ_hours E_facility,h × M_h / 1000 (kg); M_h = the hour's contractual "
        "factor, else I_contract(zone, year), else the hour's location-based I_h (flagged)",
    ),
    ("Inference per request", "CO2e / requests of each window, idle time included"),
)
DEFAULTS = (
    ("Grid intensity when nothing is known", "475 gCO2e/kWh, IEA 2019 world average (zone WORLD)"),
    ("PUE of a personal machine", "1.0"),
    ("PUE of an unknown data centre", "1.56 (Uptime Institute 2024)"),
    ("Cloud PUE", "per provider/region (Cloud Carbon Footprint)"),
    ("RAM without RAPL DRAM", "0.3725 W/GB (Green Algorithms)"),
    ("CPU without RAPL", "rated power (TDP) × utilisation"),
)


@dataclass(frozen=True, slots=True)
class EstimateCounts:
    """How many figures of the period rest on estimates or defaults."""

    runs: int
    runs_with_estimates: int
    unmetered_runs: int
    world_default_runs: int
    market_fallback_runs: int


def attribution_text() -> str:
    """The shipped data's attribution notice (sources and licences), verbatim."""
    data = resources.files("carbonledger.intensity").joinpath("data/ATTRIBUTION.md")
    return data.read_text(encoding="utf-8")


def factors_in_use(engine: Engine, *, period: Period, team: str | None = None) -> pd.DataFrame:
    """The emission factors behind the period's figures, with their sources and licences."""
    return frame(
        engine,
        "SELECT s.zone, s.factor_year, s.intensity_method, "
        f"{weighted_intensity_sql('s.co2e_location_kg', 's.location_intensity_g_per_kwh')} "
        "AS location_intensity_g_per_kwh, f.intensity_g_per_kwh AS yearly_intensity_g_per_kwh, "
        "s.location_factor_source, s.location_factor_version, f.licence, "
        "s.market_factor_source, "
        f"{weighted_intensity_sql('s.co2e_market_kg', 's.market_intensity_g_per_kwh')} "
        "AS market_intensity_g_per_kwh, "
        "MAX(s.market_is_location_fallback) AS market_is_location_fallback, "
        "SUM(s.facility_energy_kwh) AS facility_energy_kwh "
        "FROM rollup_scope2_month s LEFT JOIN current_emission_factors f ON f.zone = s.zone "
        "AND f.year = s.factor_year AND f.basis = 'location' "
        "WHERE s.month >= :first AND s.month <= :last "
        "AND (CAST(:team AS VARCHAR(200)) IS NULL OR s.team = :team) "
        "GROUP BY s.zone, s.factor_year, s.intensity_method, f.intensity_g_per_kwh, "
        "s.location_factor_source, s.location_factor_version, f.licence, "
        "s.market_factor_source ORDER BY s.zone",
        first=period.first_month,
        last=period.last_month,
        team=team,
    )


def estimate_counts(engine: Engine, *, period: Period, team: str | None = None) -> EstimateCounts:
    """Counts of estimated energy, unmetered runs and defaulted factors in the period."""
    t = totals(engine, period=period, team=team)
    row = frame(
        engine,
        "SELECT COALESCE(SUM(unmetered_records), 0) AS unmetered, "
        "COALESCE(SUM(CASE WHEN zone = 'WORLD' THEN records ELSE 0 END), 0) AS world, "
        "COALESCE(SUM(CASE WHEN market_is_location_fallback = 1 THEN records ELSE 0 END), 0) "
        "AS fallback FROM rollup_scope2_month WHERE activity = 'training' "
        "AND month >= :first AND month <= :last "
        "AND (CAST(:team AS VARCHAR(200)) IS NULL OR team = :team)",
        first=period.first_month,
        last=period.last_month,
        team=team,
    ).iloc[0]
    return EstimateCounts(
        t.training_runs,
        t.runs_with_estimates,
        int(row.unmetered),
        int(row.world),
        int(row.fallback),
    )


def zone_factors(engine: Engine) -> pd.DataFrame:
    """Latest location-based factor of every zone in the ledger (what-if candidates)."""
    return frame(
        engine,
        "SELECT f.zone, f.year, f.intensity_g_per_kwh, f.source FROM current_emission_factors f "
        "WHERE f.basis = 'location' AND f.year = (SELECT MAX(g.year) FROM emission_factors g "
        "WHERE g.zone = f.zone AND g.basis = 'location') ORDER BY f.zone",
    )


def what_if(
    engine: Engine, *, period: Period, zones: list[str], team: str | None = None
) -> pd.DataFrame:
    """The period's facility energy in other zones: CO2e and savings against the actual."""
    actual = totals(engine, period=period, team=team)
    factors = zone_factors(engine)
    chosen = factors[factors.zone.isin(zones)].copy()
    chosen["facility_energy_kwh"] = actual.facility_energy_kwh
    chosen["co2e_location_kg"] = chosen.intensity_g_per_kwh * actual.facility_energy_kwh / 1000.0
    chosen["savings_kg"] = actual.co2e_location_kg - chosen.co2e_location_kg
    chosen["savings_pct"] = (
        100.0 * chosen.savings_kg / actual.co2e_location_kg if actual.co2e_location_kg else 0.0
    )
    return chosen.sort_values("co2e_location_kg").reset_index(drop=True)


def hourly_intensity_available() -> bool:
    """Whether hourly (time-of-day) intensities ship (Electricity Maps 2021-2023, 18 zones)."""
    from carbonledger.intensity.hourly import hourly_zones

    return bool(hourly_zones())
