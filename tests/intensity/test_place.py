"""One place resolver: every spelling of a place is the same zone on every surface."""

from __future__ import annotations

import pytest

from carbonledger.errors import UnknownLocationError
from carbonledger.intensity import (
    Location,
    command_line_place,
    configured_zone,
    ledger_zone,
    normalize_location,
    resolve_place,
    zone_of_tags,
)
from carbonledger.settings import Settings


@pytest.mark.parametrize("spelling", ["DEU", "DE", "deu", "de", "Germany", "germany"])
def test_every_spelling_of_a_country_is_one_zone(spelling: str) -> None:
    assert ledger_zone(Location(country=spelling)) == "DE"
    assert configured_zone(Settings(country=spelling)) == "DE"
    assert zone_of_tags({"carbon.country": spelling}) == "DE"
    place = resolve_place(Settings(country=spelling), environ={})
    assert place.zone == "DE" and place.tags()["carbon.country"] == "DE"
    assert place.grid.zone == "DE"


def test_a_country_without_a_shipped_zone_is_its_alpha2_code() -> None:
    assert ledger_zone(Location(country="Andorra")) == ledger_zone(Location(country="AND"))


def test_cloud_regions_and_their_aliases_resolve_to_their_zone() -> None:
    assert ledger_zone(Location(cloud_provider="aws", cloud_region="eu-central-1")) == "DE"
    assert ledger_zone(Location(cloud_provider="AWS", cloud_region="EU-CENTRAL-1")) == "DE"
    west = normalize_location(Location(cloud_provider="azure", cloud_region="West Europe"))
    assert west.cloud_region == "westeurope" and west.cloud_provider == "azure"


def test_a_zone_beats_a_country_and_is_spelled_as_shipped() -> None:
    assert ledger_zone(Location(grid_zone="us-cal-ciso", country="FR")) == "US-CAL-CISO"


def test_unknown_places_name_the_fix() -> None:
    with pytest.raises(UnknownLocationError, match="CARBONLEDGER_COUNTRY"):
        ledger_zone(Location(country="Atlantis"))
    with pytest.raises(UnknownLocationError, match="CARBONLEDGER_GRID_ZONE"):
        ledger_zone(Location(grid_zone="XX-ATL"))


def test_the_etl_keeps_an_unshipped_zone_for_the_ledgers_own_factors() -> None:
    assert zone_of_tags({"carbon.grid_zone": "ACME-DC1", "carbon.country": "XX"}) == "ACME-DC1"


def test_a_place_on_the_command_line_beats_the_environment() -> None:
    env = Settings(grid_zone="FR", intensity_g_per_kwh=10.0)
    settings, location = command_line_place(env, country="Germany")
    assert settings.intensity_g_per_kwh is None and location == Location(country="Germany")
    place = resolve_place(settings, location=location)
    assert place.zone == "DE"
    unchanged, none = command_line_place(env)
    assert unchanged is env and none is None
