"""Runs without plugin data are kept (and estimated when asked); stale RUNNING runs are flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl
from carbonledger.settings import get_settings


def one(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).one()


def test_a_run_without_plugin_data_is_kept_as_unmetered(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    make_run(client, client.create_experiment("legacy"), metrics={"loss": 0.1})

    summary = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    run = one(ledger, "SELECT metering, energy_kwh, any_component_estimated FROM runs")
    assert summary.loaded == 1 and sum(summary.quarantined.values()) == 0
    assert tuple(run) == ("unmetered", None, False)
    co2e = one(ledger, "SELECT co2e_location_kg FROM run_co2e")
    assert co2e[0] is None


def test_unmetered_runs_are_estimated_from_duration_and_configured_power(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBONLEDGER_UNMETERED_POWER_W", "500")
    monkeypatch.setenv("CARBONLEDGER_GRID_ZONE", "FR")
    get_settings.cache_clear()
    make_run(client, client.create_experiment("legacy"), start_ms=T0_MS, end_ms=T0_MS + 7_200_000)

    run_etl(ledger, mlflow_uris=[mlflow_uri])

    run = one(ledger, "SELECT * FROM runs")
    assert run.metering == "unmetered" and run.any_component_estimated
    assert run.energy_kwh == pytest.approx(1.0)  # 500 W x 2 h
    energy = one(ledger, "SELECT component, method, is_estimate FROM run_energy")
    assert tuple(energy) == ("machine", "duration-x-configured-power", True)
    assert one(ledger, "SELECT co2e_location_kg FROM run_co2e")[0] == pytest.approx(0.05)


def test_running_runs_with_an_old_heartbeat_are_marked_stale_with_their_last_energy(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    beat = datetime(2024, 6, 1, tzinfo=UTC)
    beat_ms = int(beat.timestamp() * 1000)
    stuck = make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=2.0, heartbeat_ms=beat_ms),
        tags=metered_tags(),
        end_ms=None,
    )
    alive = make_run(
        client,
        exp,
        metrics=metered_metrics(heartbeat_ms=beat_ms + 3_000_000),
        tags=metered_tags(),
        end_ms=None,
    )
    now = beat + timedelta(seconds=3700)  # default threshold: 3600 s

    summary = run_etl(ledger, mlflow_uris=[mlflow_uri], now=now)[0]

    assert summary.stale == 1
    with ledger.connect() as conn:
        flags = dict(conn.execute(text("SELECT run_id, is_stale FROM runs")).all())
        energy = conn.execute(
            text("SELECT energy_kwh FROM runs WHERE run_id = :r"), {"r": stuck}
        ).scalar()
    assert bool(flags[stuck]) and not bool(flags[alive])
    assert energy == pytest.approx(2.25)
    assert run_etl(ledger, mlflow_uris=[mlflow_uri], now=now)[0].stale == 0  # counted once

    client.set_terminated(stuck, "KILLED", end_time=beat_ms + 4_000_000)
    run_etl(ledger, mlflow_uris=[mlflow_uri], now=now)
    with ledger.connect() as conn:
        row = conn.execute(
            text("SELECT status, is_stale FROM runs WHERE run_id = :r"), {"r": stuck}
        ).one()
    assert row.status == "KILLED" and not row.is_stale
