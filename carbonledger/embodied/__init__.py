"""Embodied (manufacturing) emissions of the hardware a run reserved: the ``M`` of the SCI.

Modules: ``tables`` (the shipped Cloud Carbon Footprint and ADEME/Hubblo tables, loaded
lazily). Sources and licences: ``ATTRIBUTION`` and ``carbonledger/embodied/data/ATTRIBUTION.md``.
"""

from __future__ import annotations

import logging

from carbonledger.embodied.tables import ATTRIBUTION

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["ATTRIBUTION"]
