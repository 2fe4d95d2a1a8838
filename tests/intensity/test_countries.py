"""Countries given as ISO alpha-2, alpha-3 or name resolve to the same factor."""

from __future__ import annotations

import pytest

from carbonledger.intensity import Location, known_countries, resolve_intensity
from carbonledger.intensity.resolve import normalize_country
from carbonledger.settings import Settings


@pytest.mark.parametrize(
    ("given", "alpha2"),
    [
        ("DE", "DE"),
        ("DEU", "DE"),
        ("deu", "DE"),
        ("de", "DE"),
        ("Germany", "DE"),
        ("USA", "US"),
        ("GBR", "GB"),
        ("KOR", "KR"),
        ("South Korea", "KR"),
        ("CYM", "KY"),
        ("CYP", "CY"),
    ],
)
def test_alpha2_alpha3_and_names(given: str, alpha2: str) -> None:
    assert normalize_country(given) == alpha2


def test_alpha2_and_alpha3_give_the_same_factor() -> None:
    a2 = resolve_intensity(Settings(), location=Location(country="JP"))
    a3 = resolve_intensity(Settings(), location=Location(country="JPN"))
    assert a2 == a3
    assert (a2.zone, a2.country, a2.source) == ("JP", "JP", "electricity-maps-yearly")


def test_country_setting_is_read() -> None:
    factor = resolve_intensity(Settings(country="NOR"))
    assert (factor.resolved_by, factor.country) == ("country", "NO")


def test_country_without_electricity_maps_zone_uses_ember() -> None:
    from carbonledger.intensity import tables

    code = sorted(set(tables.ember_by_alpha2()) - set(tables.zones()))[0]
    rec = tables.ember_by_alpha2()[code]
    alpha3 = tables.countries()[code].alpha3
    factor = resolve_intensity(Settings(), location=Location(country=alpha3))
    assert factor.source == "ember-yearly"
    assert factor.intensity_g_per_kwh == rec.intensity_g_per_kwh
    assert factor.licence and "CC-BY-SA-4.0" in factor.licence


def test_known_countries_have_unique_codes() -> None:
    rows = known_countries()
    assert len({a2 for a2, _, _ in rows}) == len(rows)
    assert len({a3 for _, a3, _ in rows}) == len(rows)
    assert ("KY", "CYM", "Cayman Islands") in rows  # fixed: the source coded it CY
