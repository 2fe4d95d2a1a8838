"""Which data year a yearly factor comes from."""

from __future__ import annotations

from carbonledger.intensity import Location, resolve_intensity, tables
from carbonledger.settings import Settings


def test_shipped_electricity_maps_years_are_2021_to_2025() -> None:
    assert tables.zone_years() == (2021, 2022, 2023, 2024, 2025)


def test_default_is_the_latest_shipped_year() -> None:
    factor = resolve_intensity(Settings(grid_zone="DE"))
    assert factor.year == 2025
    assert factor.intensity_g_per_kwh == tables.zones()["DE"].intensity_g_per_kwh_by_year[2025]
    assert factor.note is None


def test_requested_shipped_year_is_used() -> None:
    factor = resolve_intensity(Settings(grid_zone="DE"), year=2022)
    assert factor.year == 2022
    assert factor.intensity_g_per_kwh == tables.zones()["DE"].intensity_g_per_kwh_by_year[2022]


def test_year_setting_is_used_when_no_argument() -> None:
    factor = resolve_intensity(Settings(grid_zone="DE", intensity_year=2023))
    assert factor.year == 2023


def test_argument_beats_year_setting() -> None:
    factor = resolve_intensity(Settings(grid_zone="DE", intensity_year=2023), year=2021)
    assert factor.year == 2021


def test_later_year_than_shipped_uses_latest_before_it_with_a_note() -> None:
    factor = resolve_intensity(Settings(grid_zone="PL"), year=2031)
    assert factor.year == 2025
    assert factor.note is not None and "no 2031 table" in factor.note


def test_year_before_every_shipped_table_uses_the_latest() -> None:
    factor = resolve_intensity(Settings(grid_zone="PL"), year=2015)
    assert factor.year == 2025
    assert "no 2015 table" in (factor.note or "")


def test_years_differ_in_value_for_a_changing_grid() -> None:
    # Guards against a loader that ignores the year: GB's grid changed a lot 2021 -> 2025.
    by_year = tables.zones()["GB"].intensity_g_per_kwh_by_year
    assert by_year[2021] != by_year[2025]
    assert (
        resolve_intensity(Settings(grid_zone="GB"), year=2021).intensity_g_per_kwh == by_year[2021]
    )


def test_ember_country_keeps_its_own_year() -> None:
    # A country Electricity Maps lacks falls back to Ember, which ships one year per country.
    ember_only = sorted(set(tables.ember_by_alpha2()) - set(tables.zones()))
    assert ember_only, "expected at least one country only Ember covers"
    code = ember_only[0]
    rec = tables.ember_by_alpha2()[code]
    factor = resolve_intensity(Settings(), location=Location(country=code), year=2021)
    assert (factor.source, factor.year) == ("ember-yearly", rec.year)
    assert "Ember ships one year" in (factor.note or "")
