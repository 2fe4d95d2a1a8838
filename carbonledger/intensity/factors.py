"""Types for grid intensity and PUE: every factor carries its provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Basis = Literal["location", "market"]

# How a factor was resolved (public: recorded in MLflow tags and the ledger).
RESOLVED_EXPLICIT = "explicit"
RESOLVED_ZONE = "zone"
RESOLVED_CLOUD_REGION = "cloud-region"
RESOLVED_COUNTRY = "country"
RESOLVED_WORLD_DEFAULT = "world-default"
RESOLVED_LIVE = "live"
# Appended to the rule (``zone+live-fallback``) when the live provider failed and the yearly
# table answered instead; the factor's note says why.
LIVE_FALLBACK_SUFFIX = "+live-fallback"

# Datasets (``GridFactor.source``) and their licences.
SOURCE_EXPLICIT = "explicit"
SOURCE_ELECTRICITY_MAPS_YEARLY = "electricity-maps-yearly"
SOURCE_EMBER_YEARLY = "ember-yearly"
SOURCE_WORLD_DEFAULT = "iea-2019-world"
SOURCE_ELECTRICITY_MAPS_LIVE = "electricity-maps-live"
LICENCE_ELECTRICITY_MAPS = "ODbL-1.0 (Electricity Maps)"
LICENCE_EMBER = "CC-BY-SA-4.0 (Ember)"
LICENCE_ELECTRICITY_MAPS_API = "Electricity Maps API terms of use"

# PUE provenance (``PueFactor.source``).
PUE_EXPLICIT = "explicit"
PUE_CLOUD_TABLE = "cloud-table"
PUE_DEFAULT = "default"

DEFAULT_PUE = 1.0  # a personal machine, or nothing known
UNKNOWN_DATACENTRE_PUE = 1.56  # Uptime Institute 2024 survey average, for an unknown data centre

WORLD_AVERAGE_G_PER_KWH = 475.0  # IEA 2019, the fallback other tools use too


@dataclass(frozen=True, slots=True)
class GridFactor:
    """A grid emission factor with its provenance.

    Attributes:
        intensity_g_per_kwh: gCO2e per kWh of electricity.
        source: dataset, e.g. ``electricity-maps-yearly``, ``ember-yearly``, ``iea-2019-world``,
            ``explicit``, ``electricity-maps-live``.
        year: data year, when the dataset has one.
        zone: Electricity Maps zone, when known.
        country: ISO 3166-1 alpha-2 code, when known.
        basis: ``location`` (grid average) or ``market`` (contractual).
        resolved_by: which rule chose it (``explicit``, ``zone``, ``cloud-region``, ``country``,
            ``world-default``, ``live``).
        licence: licence of the data the factor comes from.
        note: a human note, e.g. why a default was used.
        unit: always ``gCO2e/kWh``.
        region: a world region of the dataset (Ember's ``World``, ``EU``...), when the factor
            is for a region rather than a zone or country.
    """

    intensity_g_per_kwh: float
    source: str
    year: int | None = None
    zone: str | None = None
    country: str | None = None
    basis: Basis = "location"
    resolved_by: str = RESOLVED_EXPLICIT
    licence: str | None = None
    note: str | None = None
    unit: str = "gCO2e/kWh"
    region: str | None = None

    @property
    def label(self) -> str:
        """Short provenance for the ``carbon.intensity_source`` tag: dataset, year, zone."""
        parts = [self.source]
        if self.year is not None:
            parts.append(str(self.year))
        if self.zone or self.country or self.region:
            parts.append(self.zone or self.country or self.region or "")
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class PueFactor:
    """Power usage effectiveness with provenance (``explicit``, ``cloud-table``, ``default``)."""

    value: float
    source: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    """Where the work runs, as far as it is known."""

    cloud_provider: str | None = None
    cloud_region: str | None = None
    country: str | None = None
    grid_zone: str | None = None
