"""Embodied (manufacturing) emissions of the hardware a run reserved: the ``M`` of the SCI.

Modules: ``tables`` (the shipped Cloud Carbon Footprint and ADEME/Hubblo tables, loaded lazily),
``cards`` (which study card a GPU model name means), ``overrides`` (the organisation's own
figures, ``CARBONLEDGER_EMBODIED_PATH``), ``reservation`` (what a run reserved, from its tags),
``lookup`` (the host's total ``TE`` with provenance) and ``share`` (``M = TE x duration /
lifetime x reserved / host``). Figures are Scope 3, kept beside operational CO2e and never
summed into it silently. Sources and licences: ``ATTRIBUTION`` and
``carbonledger/embodied/data/ATTRIBUTION.md``; rules: docs/methodology.md.
"""

from __future__ import annotations

import logging

from carbonledger.embodied.cards import CardMatch, match_card
from carbonledger.embodied.lookup import HostEmbodied, Part, resolve_host
from carbonledger.embodied.overrides import OverrideRow, Overrides, load_overrides
from carbonledger.embodied.reservation import (
    Reservation,
    Unavailable,
    reservation_from_hardware,
    reservation_from_tags,
)
from carbonledger.embodied.share import (
    EmbodiedShare,
    amortised_co2e_kg,
    embodied_for_tags,
    embodied_share,
    resource_share,
)
from carbonledger.embodied.tables import ATTRIBUTION

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ATTRIBUTION",
    "CardMatch",
    "EmbodiedShare",
    "HostEmbodied",
    "OverrideRow",
    "Overrides",
    "Part",
    "Reservation",
    "Unavailable",
    "amortised_co2e_kg",
    "embodied_for_tags",
    "embodied_share",
    "load_overrides",
    "match_card",
    "reservation_from_hardware",
    "reservation_from_tags",
    "resolve_host",
    "resource_share",
]
