"""Accounting in the ledger: CO2e = facility kWh x the current factor of (zone, year).

Location- and market-based side by side; a new factor version restates the totals while the
plugin's own figure stays beside the recomputed one.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, insert, text

from carbonledger.ledger import add_emission_factor
from carbonledger.ledger.models import Run
from carbonledger.ledger.repositories import get_or_create_source


def add_run(engine: Engine, run_id: str, *, zone: str | None, year: int, facility: float) -> None:
    with engine.begin() as conn:
        source_id = get_or_create_source(conn, uri="test://")
        conn.execute(
            insert(Run).values(
                source_id=source_id,
                run_id=run_id,
                kind="training",
                status="FINISHED",
                team="t",
                grid_zone=zone,
                activity_year=year,
                metering="metered",
                energy_kwh=facility,
                pue=1.0,
                facility_energy_kwh=facility,
                plugin_co2e_kg=facility * 0.123,
                content_hash="x",
            )
        )


def co2e(engine: Engine, run_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM run_co2e WHERE run_id = :r"), {"r": run_id}).one()


def test_location_based_uses_the_zone_factor_of_the_run_year(ledger: Engine) -> None:
    add_run(ledger, "a", zone="DE", year=2023, facility=2.0)
    add_run(ledger, "b", zone="DE", year=2024, facility=2.0)
    assert co2e(ledger, "a").co2e_location_kg == pytest.approx(2.0 * 400 / 1000)
    assert co2e(ledger, "b").co2e_location_kg == pytest.approx(2.0 * 380 / 1000)


def test_a_year_without_data_uses_the_latest_earlier_year_then_the_earliest(
    ledger: Engine,
) -> None:
    add_run(ledger, "later", zone="DE", year=2026, facility=1.0)
    add_run(ledger, "earlier", zone="DE", year=2010, facility=1.0)
    assert co2e(ledger, "later").factor_year == 2024
    assert co2e(ledger, "later").co2e_location_kg == pytest.approx(0.38)
    assert co2e(ledger, "earlier").factor_year == 2023


def test_a_run_without_zone_uses_the_world_average(ledger: Engine) -> None:
    add_run(ledger, "nowhere", zone=None, year=2024, facility=1.0)
    row = co2e(ledger, "nowhere")
    assert row.zone == "WORLD" and row.co2e_location_kg == pytest.approx(0.475)


def test_market_based_uses_the_contract_where_configured_else_location_flagged(
    ledger: Engine,
) -> None:
    add_run(ledger, "de", zone="DE", year=2024, facility=10.0)
    add_run(ledger, "fr", zone="FR", year=2024, facility=10.0)
    with ledger.begin() as conn:
        add_emission_factor(
            conn,
            zone="DE",
            year=2024,
            basis="market",
            intensity_g_per_kwh=20.0,
            source="supplier-mix-2024",
            instrument="PPA wind",
        )
    de, fr = co2e(ledger, "de"), co2e(ledger, "fr")
    assert de.co2e_location_kg == pytest.approx(3.8)
    assert de.co2e_market_kg == pytest.approx(0.2) and not de.market_is_location_fallback
    assert fr.co2e_market_kg == pytest.approx(fr.co2e_location_kg) == pytest.approx(0.5)
    assert fr.market_is_location_fallback


def test_a_new_factor_version_restates_totals_and_keeps_the_plugin_figure(ledger: Engine) -> None:
    add_run(ledger, "r", zone="FR", year=2024, facility=4.0)
    before = co2e(ledger, "r")
    with ledger.begin() as conn:
        version = add_emission_factor(
            conn, zone="FR", year=2024, intensity_g_per_kwh=60.0, source="electricity-maps-yearly"
        )
        same = add_emission_factor(
            conn, zone="FR", year=2024, intensity_g_per_kwh=60.0, source="electricity-maps-yearly"
        )
    after = co2e(ledger, "r")
    assert (version, same) == (2, None)
    assert before.co2e_location_kg == pytest.approx(0.2)
    assert after.co2e_location_kg == pytest.approx(0.24) and after.location_factor_version == 2
    assert after.plugin_co2e_kg == before.plugin_co2e_kg == pytest.approx(4.0 * 0.123)
    with ledger.connect() as conn:  # the old version stays for the audit trail
        versions = (
            conn.execute(
                text("SELECT version FROM emission_factors WHERE zone='FR' ORDER BY version")
            )
            .scalars()
            .all()
        )
    assert versions == [1, 2]


def test_reseeding_a_changed_shipped_factor_writes_a_new_version(ledger: Engine) -> None:
    from carbonledger.intensity.factors import GridFactor
    from carbonledger.ledger import seed_emission_factors

    with ledger.begin() as conn:
        result = seed_emission_factors(
            conn,
            factors=[
                GridFactor(55.0, "electricity-maps-yearly", year=2024, zone="FR"),
                GridFactor(380.0, "electricity-maps-yearly", year=2024, zone="DE"),
                GridFactor(700.0, "electricity-maps-yearly", year=2024, zone="PL"),
            ],
        )
    assert (result.added, result.restated, result.unchanged) == (1, 1, 1)


def test_shipped_factors_seed_zones_countries_and_the_world_default(ledger: Engine) -> None:
    from carbonledger.ledger import seed_emission_factors, shipped_factors

    with ledger.begin() as conn:
        seed_emission_factors(conn, factors=shipped_factors())
        zones = set(conn.execute(text("SELECT DISTINCT zone FROM emission_factors")).scalars())
    assert {"WORLD", "DE", "FR", "US-CAL-CISO"} <= zones
    assert len(zones) > 100
