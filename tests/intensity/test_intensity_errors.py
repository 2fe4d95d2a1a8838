"""Unknown zones, regions and countries raise errors that list the closest valid names."""

from __future__ import annotations

import pytest

from carbonledger.errors import CarbonLedgerError, UnknownLocationError
from carbonledger.intensity import Location, resolve_intensity, resolve_pue
from carbonledger.settings import Settings


def test_unknown_zone_lists_closest_zones() -> None:
    with pytest.raises(UnknownLocationError) as info:
        resolve_intensity(Settings(grid_zone="US-CAL-CSIO"))
    message = str(info.value)
    assert message.startswith("unknown grid zone 'US-CAL-CSIO'; closest: US-CAL-CISO")
    assert "CARBONLEDGER_GRID_ZONE" in message
    assert "carbonledger estimate --list-zones" in message
    assert info.value.suggestions[0] == "US-CAL-CISO"
    assert isinstance(info.value, CarbonLedgerError)


def test_unknown_region_lists_closest_regions_of_that_provider() -> None:
    with pytest.raises(UnknownLocationError) as info:
        resolve_intensity(Settings(cloud_provider="aws", cloud_region="eu-west-9"))
    assert "unknown aws region 'eu-west-9'" in str(info.value)
    assert "CARBONLEDGER_CLOUD_REGION" in str(info.value)
    assert {"eu-west-1", "eu-west-2", "eu-west-3"} <= set(info.value.suggestions)
    assert all(not s.startswith("europe") for s in info.value.suggestions)


def test_unknown_region_is_an_error_for_pue_too() -> None:
    with pytest.raises(UnknownLocationError, match="unknown gcp region"):
        resolve_pue(Settings(), location=Location(cloud_provider="gcp", cloud_region="europe-wes4"))


def test_unknown_country_lists_closest_countries() -> None:
    with pytest.raises(UnknownLocationError) as info:
        resolve_intensity(Settings(country="Germny"))
    assert "unknown country 'Germny'" in str(info.value)
    assert info.value.suggestions == ["DE (Germany)"]
    assert "CARBONLEDGER_COUNTRY" in str(info.value)


def test_unknown_provider_lists_known_providers() -> None:
    with pytest.raises(UnknownLocationError, match="aws, azure, gcp"):
        resolve_intensity(Settings(), location=Location(cloud_provider="ibm", cloud_region="x"))


def test_nonsense_gets_no_close_match_but_still_the_fix() -> None:
    with pytest.raises(UnknownLocationError) as info:
        resolve_intensity(Settings(grid_zone="ZZZZZZZZZZZZZZ"))
    assert "no close match" in str(info.value)
    assert "--list-zones" in str(info.value)
    assert info.value.suggestions == []
