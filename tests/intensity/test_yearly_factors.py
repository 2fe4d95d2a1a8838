"""yearly_factors(): every shipped location-based factor, for seeding the ledger."""

from __future__ import annotations

from collections import Counter

from carbonledger.intensity import tables, yearly_factors


def test_every_zone_year_and_every_ember_row_once() -> None:
    factors = list(yearly_factors())
    by_source = Counter(f.source for f in factors)
    assert by_source["electricity-maps-yearly"] == 352 * 5
    assert by_source["ember-yearly"] == len(tables.ember())
    keys = [(f.source, f.year, f.zone, f.country, f.region) for f in factors]
    assert len(keys) == len(set(keys)), "duplicate factor keys"


def test_factors_carry_provenance() -> None:
    for f in yearly_factors():
        assert f.basis == "location"
        assert f.unit == "gCO2e/kWh"
        assert f.year is not None
        assert f.licence
        assert f.zone or f.country or f.region
        assert f.intensity_g_per_kwh >= 0


def test_ember_world_regions_are_named() -> None:
    regions = {f.region: f for f in yearly_factors() if f.region}
    assert "World" in regions
    assert regions["World"].country is None and regions["World"].zone is None


def test_values_match_the_tables() -> None:
    de = {f.year: f.intensity_g_per_kwh for f in yearly_factors() if f.zone == "DE"}
    assert de == tables.zones()["DE"].intensity_g_per_kwh_by_year
