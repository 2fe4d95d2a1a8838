"""Places resolve the same way in the ETL as everywhere: DEU, DE, deu and Germany are zone DE."""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.errors import ConfigError
from carbonledger.etl import run_etl
from carbonledger.settings import get_settings

COLUMNS = (
    "run_id, team, metering, grid_zone, energy_kwh, facility_energy_kwh, co2e_location_kg, "
    "zone, factor_year"
)


def _ledger_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT r.run_id, r.team, r.metering, r.grid_zone, r.energy_kwh, "
                    "e.facility_energy_kwh, e.co2e_location_kg, e.zone, e.factor_year "
                    "FROM runs r JOIN v_run_emissions e ON e.run_pk = r.id ORDER BY r.run_id"
                )
            )
        ]


@pytest.mark.parametrize("country", ["DEU", "DE", "deu", "Germany"])
def test_the_etl_keeps_runs_without_carbon_data_in_the_configured_country(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, country: str
) -> None:
    monkeypatch.setenv("CARBONLEDGER_COUNTRY", country)
    monkeypatch.setenv("CARBONLEDGER_UNMETERED_POWER_W", "400")
    get_settings.cache_clear()
    exp = client.create_experiment("places")
    older = make_run(client, exp, tags={})  # plugin off: no carbon data
    metered = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("DE"))
    tagged_alpha3 = make_run(client, exp, metrics=metered_metrics(), tags={"carbon.country": "DEU"})

    summary = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert sum(summary.quarantined.values()) == 0
    got = {r[0]: r for r in _ledger_rows(ledger)}
    assert got[older][2:4] == ("unmetered", "DE")
    assert got[older][4] == pytest.approx(0.4)  # 400 W for the run's hour
    assert got[metered][3] == got[tagged_alpha3][3] == "DE"
    assert got[older][6] == pytest.approx(0.4 * 380.0 / 1000.0)  # DE 2024 factor


def test_every_spelling_gives_the_same_ledger(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from carbonledger.ledger import create_ledger_engine, migrate
    from carbonledger.ledger.repositories import seed_emission_factors

    exp = client.create_experiment("same")
    for _ in range(2):
        make_run(client, exp, tags={})
    make_run(client, exp, metrics=metered_metrics(), tags={"carbon.country": "Germany"})
    monkeypatch.setenv("CARBONLEDGER_UNMETERED_POWER_W", "250")
    ledgers = []
    for country in ("DEU", "DE", "Germany"):
        monkeypatch.setenv("CARBONLEDGER_COUNTRY", country)
        get_settings.cache_clear()
        engine = create_ledger_engine(f"sqlite:///{tmp_path / f'{country}.db'}")
        migrate.upgrade(engine)
        from cl_ledger_fixtures import TEST_FACTORS

        with engine.begin() as conn:
            seed_emission_factors(conn, factors=TEST_FACTORS)
        run_etl(engine, mlflow_uris=[mlflow_uri])
        ledgers.append(_ledger_rows(engine))
        engine.dispose()
    assert ledgers[0] == ledgers[1] == ledgers[2]
    assert {row[3] for row in ledgers[0]} == {"DE"}


def test_an_unknown_configured_country_stops_the_etl_with_the_fix(
    ledger: Engine, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBONLEDGER_COUNTRY", "Atlantis")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="CARBONLEDGER_COUNTRY"):
        run_etl(ledger, mlflow_uris=[mlflow_uri])
