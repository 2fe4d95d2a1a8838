"""The world average default: 475 gCO2e/kWh (IEA 2019), loud about itself."""

from __future__ import annotations

import logging

import pytest

from carbonledger.intensity import WORLD_AVERAGE_G_PER_KWH, Location, resolve_intensity
from carbonledger.settings import Settings


def test_world_default_value_source_and_note() -> None:
    factor = resolve_intensity(Settings(), location=Location())
    assert WORLD_AVERAGE_G_PER_KWH == 475.0
    assert factor.intensity_g_per_kwh == 475.0
    assert factor.source == "iea-2019-world"
    assert factor.resolved_by == "world-default"
    assert factor.note and "world average" in factor.note
    assert "CARBONLEDGER_GRID_ZONE" in factor.note  # the note names the fix


def test_world_default_logs_one_warning_per_process(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        resolve_intensity(Settings(), location=Location())
        resolve_intensity(Settings(), location=Location())
    warnings = [r for r in caplog.records if "world average" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_a_provider_without_region_does_not_leave_the_world_default() -> None:
    factor = resolve_intensity(Settings(), location=Location(cloud_provider="aws"))
    assert factor.resolved_by == "world-default"


def test_known_location_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="carbonledger"):
        resolve_intensity(Settings(), location=Location(country="FR"))
    assert not caplog.records
