"""Grid intensity and PUE: which gCO2e/kWh and which PUE apply to a run, with provenance.

Modules: ``factors`` (the ``GridFactor``/``PueFactor``/``Location`` types and public
constants), ``tables`` (the shipped data, loaded lazily and cached), ``cloud`` (cloud region
names, aliases and environment detection), ``resolve`` (the resolution rules), ``place``
(the one place resolver every surface calls), ``live`` (the optional Electricity Maps live
provider) and ``estimate`` (ML-CO2-Impact-style estimates from
rated power). The shipped data's sources and licences are in ``ATTRIBUTION`` and
``carbonledger/intensity/data/ATTRIBUTION.md``; see docs/intensity.md.
"""

from __future__ import annotations

import logging

from carbonledger.intensity.cloud import known_regions
from carbonledger.intensity.factors import (
    UNKNOWN_DATACENTRE_PUE,
    WORLD_AVERAGE_G_PER_KWH,
    GridFactor,
    Location,
    PueFactor,
)
from carbonledger.intensity.place import (
    Place,
    command_line_place,
    configured_zone,
    ledger_zone,
    normalize_location,
    resolve_place,
    zone_of_tags,
)
from carbonledger.intensity.resolve import (
    detect_location,
    known_countries,
    known_zones,
    resolve_intensity,
    resolve_pue,
    yearly_factors,
)
from carbonledger.intensity.tables import ATTRIBUTION

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ATTRIBUTION",
    "UNKNOWN_DATACENTRE_PUE",
    "WORLD_AVERAGE_G_PER_KWH",
    "GridFactor",
    "Location",
    "Place",
    "PueFactor",
    "command_line_place",
    "configured_zone",
    "detect_location",
    "known_countries",
    "known_regions",
    "known_zones",
    "ledger_zone",
    "normalize_location",
    "resolve_intensity",
    "resolve_place",
    "resolve_pue",
    "yearly_factors",
    "zone_of_tags",
]
