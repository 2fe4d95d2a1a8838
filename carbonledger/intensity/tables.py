"""The shipped intensity tables: loaded on first use, parsed once, cached for the process.

The CSV files in ``carbonledger/intensity/data/`` are built by
``scripts/build_intensity_tables.py`` from Ember, Electricity Maps, UNFCCC/IFI and Cloud Carbon
Footprint data (see ``ATTRIBUTION``). Nothing is read at import time.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

ATTRIBUTION = (
    "Grid intensity data: Electricity Maps yearly zone averages 2021-2025 and hourly data "
    "2021-2023 for 18 zones (Electricity Maps, "
    "https://www.electricitymaps.com, licensed under the Open Database License ODbL 1.0; derived "
    "databases stay ODbL); Ember yearly country and region averages (Ember, "
    "https://ember-energy.org, "
    "CC BY-SA 4.0); UNFCCC/IFI harmonised grid factors 2021 and country codes (UNFCCC, CC BY-SA "
    "4.0) - all three as republished in CO2.js by The Green Web Foundation; cloud region to "
    "zone mapping and PUE figures from Cloud Carbon Footprint (Thoughtworks, Apache-2.0); world "
    "fallback 475 gCO2e/kWh from the IEA (2019)."
)


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One Electricity Maps zone with its yearly average intensity (gCO2e/kWh) per year."""

    zone: str
    name: str
    country: str | None
    intensity_g_per_kwh_by_year: dict[int, float]


@dataclass(frozen=True, slots=True)
class EmberRecord:
    """Ember's latest yearly average for a country (``alpha2`` set) or a world region."""

    code: str
    alpha2: str | None
    name: str
    year: int
    intensity_g_per_kwh: float


@dataclass(frozen=True, slots=True)
class CountryRecord:
    """An ISO 3166-1 country with the UNFCCC/IFI 2021 operating-margin factor where published."""

    alpha2: str
    alpha3: str
    name: str
    marginal_om_g_per_kwh: float | None


@dataclass(frozen=True, slots=True)
class CloudRegionRecord:
    """A cloud region: where it is (country, zone) and its PUE with the PUE's basis."""

    provider: str
    region: str
    aliases: tuple[str, ...]
    country: str | None
    zone: str | None
    pue: float
    pue_basis: str


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("carbonledger.intensity").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def zones() -> dict[str, ZoneRecord]:
    """Electricity Maps zones by zone name (exact spelling, e.g. ``US-CAL-CISO``)."""
    rows = _read_csv("electricity_maps_yearly.csv")
    out: dict[str, ZoneRecord] = {}
    for row in rows:
        by_year = {
            int(col): float(val)
            for col, val in row.items()
            if col.isdigit() and val not in ("", None)
        }
        out[row["zone"]] = ZoneRecord(
            row["zone"], row["zone_name"], row["country"] or None, by_year
        )
    return out


@cache
def zone_years() -> tuple[int, ...]:
    """The years of the shipped Electricity Maps tables, ascending."""
    return tuple(sorted({y for z in zones().values() for y in z.intensity_g_per_kwh_by_year}))


@cache
def zones_upper() -> dict[str, str]:
    """Upper-cased zone name -> zone name, for case-insensitive lookups."""
    return {z.upper(): z for z in zones()}


@cache
def ember() -> dict[str, EmberRecord]:
    """Ember rows by code: ISO alpha-3 for countries, the region name for regions."""
    out: dict[str, EmberRecord] = {}
    for row in _read_csv("ember_yearly.csv"):
        out[row["code"]] = EmberRecord(
            code=row["code"],
            alpha2=row["alpha2"] or None,
            name=row["name"],
            year=int(row["year"]),
            intensity_g_per_kwh=float(row["intensity_g_per_kwh"]),
        )
    return out


@cache
def ember_by_alpha2() -> dict[str, EmberRecord]:
    """Ember country rows by ISO alpha-2 code."""
    return {r.alpha2: r for r in ember().values() if r.alpha2}


@cache
def countries() -> dict[str, CountryRecord]:
    """Countries by ISO alpha-2 code."""
    out: dict[str, CountryRecord] = {}
    for row in _read_csv("countries.csv"):
        om = row["marginal_om_g_per_kwh_2021"]
        out[row["alpha2"]] = CountryRecord(
            row["alpha2"], row["alpha3"], row["name"], float(om) if om else None
        )
    return out


@cache
def country_aliases() -> dict[str, str]:
    """Upper-cased alpha-2, alpha-3 and name -> alpha-2 (for ``normalize_country``)."""
    known = countries()
    out: dict[str, str] = {rec.name.upper(): rec.alpha2 for rec in known.values()}
    for zone in zones().values():  # Electricity Maps' short names ("South Korea")
        if zone.zone in known:
            out.setdefault(zone.name.upper(), zone.zone)
    for ember_rec in ember().values():  # Ember's names ("United States")
        if ember_rec.alpha2 in known:
            out.setdefault(ember_rec.name.upper(), ember_rec.alpha2)
    for rec in known.values():  # codes win over names
        out[rec.alpha3] = rec.alpha2
        out[rec.alpha2] = rec.alpha2
    return out


@cache
def cloud_regions() -> dict[tuple[str, str], CloudRegionRecord]:
    """Cloud regions by ``(provider, canonical lower-case region)``."""
    out: dict[tuple[str, str], CloudRegionRecord] = {}
    for row in _read_csv("cloud_regions.csv"):
        rec = CloudRegionRecord(
            provider=row["provider"],
            region=row["region"],
            aliases=tuple(row["aliases"].split()),
            country=row["country"] or None,
            zone=row["zone"] or None,
            pue=float(row["pue"]),
            pue_basis=row["pue_basis"],
        )
        out[(rec.provider, rec.region)] = rec
    return out


@cache
def cloud_region_names() -> dict[tuple[str, str], str]:
    """``(provider, normalised name or alias)`` -> canonical region."""
    out: dict[tuple[str, str], str] = {}
    for (provider, region), rec in cloud_regions().items():
        out[(provider, normalize_region_name(region))] = region
        for alias in rec.aliases:
            out.setdefault((provider, normalize_region_name(alias)), region)
    return out


@cache
def provider_fleet_pue() -> dict[str, tuple[float, str]]:
    """Each provider's fleet-average PUE and its basis."""
    return {
        row["provider"]: (float(row["fleet_pue"]), row["basis"])
        for row in _read_csv("cloud_providers.csv")
    }


def normalize_region_name(name: str) -> str:
    """Lower-case a region name and drop spaces (Azure's ``West Europe`` -> ``westeurope``)."""
    return "".join(name.split()).lower()


def clear_caches() -> None:
    """Forget every parsed table (tests that swap the data use this)."""
    for fn in (
        zones,
        zone_years,
        zones_upper,
        ember,
        ember_by_alpha2,
        countries,
        country_aliases,
        cloud_regions,
        cloud_region_names,
        provider_fleet_pue,
    ):
        fn.cache_clear()
