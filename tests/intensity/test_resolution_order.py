"""Grid intensity resolution: each rule beats every rule after it."""

from __future__ import annotations

import pytest

from carbonledger.intensity import GridFactor, Location, resolve_intensity, tables
from carbonledger.intensity.factors import (
    RESOLVED_CLOUD_REGION,
    RESOLVED_COUNTRY,
    RESOLVED_EXPLICIT,
    RESOLVED_WORLD_DEFAULT,
    RESOLVED_ZONE,
)
from carbonledger.settings import Settings

EVERYTHING = Location(
    cloud_provider="aws", cloud_region="eu-west-1", country="FR", grid_zone="SE-SE3"
)


def _latest(zone: str) -> float:
    by_year = tables.zones()[zone].intensity_g_per_kwh_by_year
    return by_year[max(by_year)]


def test_explicit_argument_beats_everything() -> None:
    factor = resolve_intensity(Settings(), location=EVERYTHING, explicit_g_per_kwh=123.0)
    assert factor.intensity_g_per_kwh == 123.0
    assert factor.resolved_by == RESOLVED_EXPLICIT
    assert factor.source == "explicit"


def test_explicit_setting_beats_zone_region_and_country() -> None:
    factor = resolve_intensity(Settings(intensity_g_per_kwh=77.0), location=EVERYTHING)
    assert (factor.intensity_g_per_kwh, factor.resolved_by) == (77.0, RESOLVED_EXPLICIT)


def test_explicit_argument_beats_explicit_setting() -> None:
    factor = resolve_intensity(Settings(intensity_g_per_kwh=77.0), explicit_g_per_kwh=5.0)
    assert factor.intensity_g_per_kwh == 5.0


def test_zero_is_a_valid_explicit_intensity() -> None:
    factor = resolve_intensity(Settings(grid_zone="DE"), explicit_g_per_kwh=0.0)
    assert (factor.intensity_g_per_kwh, factor.resolved_by) == (0.0, RESOLVED_EXPLICIT)


def test_zone_beats_cloud_region_and_country() -> None:
    factor = resolve_intensity(Settings(), location=EVERYTHING)
    assert factor.resolved_by == RESOLVED_ZONE
    assert factor.zone == "SE-SE3"
    assert factor.intensity_g_per_kwh == _latest("SE-SE3")
    assert factor.source == "electricity-maps-yearly"


def test_cloud_region_beats_country() -> None:
    loc = Location(cloud_provider="aws", cloud_region="eu-west-1", country="FR")
    factor = resolve_intensity(Settings(), location=loc)
    assert factor.resolved_by == RESOLVED_CLOUD_REGION
    assert factor.zone == "IE"
    assert factor.intensity_g_per_kwh == _latest("IE")


def test_cloud_region_without_zone_uses_its_country() -> None:
    # aws ap-east-1 has no zone in the Cloud Carbon Footprint table: its country (HK) is used.
    factor = resolve_intensity(
        Settings(), location=Location(cloud_provider="aws", cloud_region="ap-east-1")
    )
    assert factor.resolved_by == RESOLVED_CLOUD_REGION
    assert factor.country == "HK"
    assert factor.intensity_g_per_kwh == _latest("HK")


def test_country_beats_world_default() -> None:
    factor = resolve_intensity(Settings(), location=Location(country="FR"))
    assert factor.resolved_by == RESOLVED_COUNTRY
    assert factor.zone == "FR"
    assert factor.intensity_g_per_kwh == _latest("FR")


def test_nothing_known_gives_world_default() -> None:
    factor = resolve_intensity(Settings(), location=Location())
    assert factor.resolved_by == RESOLVED_WORLD_DEFAULT
    assert factor.intensity_g_per_kwh == 475.0


def test_settings_drive_resolution_when_no_location_is_given() -> None:
    factor = resolve_intensity(Settings(cloud_provider="gcp", cloud_region="europe-west4"))
    assert (factor.resolved_by, factor.zone) == (RESOLVED_CLOUD_REGION, "NL")


def test_zone_matching_is_case_insensitive_and_keeps_shipped_spelling() -> None:
    factor = resolve_intensity(Settings(grid_zone="us-cal-ciso"))
    assert factor.zone == "US-CAL-CISO"


def test_every_factor_carries_value_unit_year_zone_source_basis() -> None:
    factor = resolve_intensity(Settings(grid_zone="DE"))
    assert isinstance(factor, GridFactor)
    assert factor.unit == "gCO2e/kWh"
    assert factor.basis == "location"
    assert factor.year == max(tables.zone_years())
    assert factor.licence and "ODbL" in factor.licence
    assert factor.label == f"electricity-maps-yearly:{factor.year}:DE"


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_invalid_explicit_intensity_is_a_config_error(bad: float) -> None:
    from carbonledger.errors import ConfigError

    with pytest.raises(ConfigError, match="explicit intensity"):
        resolve_intensity(Settings(), explicit_g_per_kwh=bad)
