"""Nested runs in the ledger: a parent's figure includes its children; sums count each kWh once."""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl


def rows(engine: Engine, sql: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.run_id: dict(r._mapping) for r in conn.execute(text(sql))}


def test_sums_over_a_parent_and_its_children_count_each_kwh_once(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("sweep")
    # The plugin's parent figure is inclusive: 2.0 kWh IT covers the two 0.5 kWh children.
    parent = make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=2.0, cpu=0.0, ram=0.0, pue=1.0),
        tags=metered_tags(),
    )
    children = [
        make_run(
            client,
            exp,
            metrics=metered_metrics(gpu=0.5, cpu=0.0, ram=0.0, pue=1.0),
            tags=metered_tags(**{"mlflow.parentRunId": parent}),
        )
        for _ in range(2)
    ]
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    view = rows(
        ledger,
        "SELECT run_id, parent_run_id, facility_energy_kwh, inclusive_facility_energy_kwh, "
        "co2e_location_kg FROM run_co2e",
    )
    assert view[parent]["facility_energy_kwh"] == pytest.approx(1.0)
    assert view[parent]["inclusive_facility_energy_kwh"] == pytest.approx(2.0)
    assert all(view[c]["parent_run_id"] == parent for c in children)
    assert sum(r["facility_energy_kwh"] for r in view.values()) == pytest.approx(2.0)
    # DE 2024 at 380 g/kWh: 2.0 kWh in all, whatever the nesting.
    assert sum(r["co2e_location_kg"] for r in view.values()) == pytest.approx(2.0 * 0.380)


def test_children_created_after_the_fact_are_not_estimated_on_top_of_their_parent(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_UNMETERED_POWER_W", "300")
    get_settings.cache_clear()
    exp = client.create_experiment("gridsearch")
    parent = make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=1.0, cpu=0.0, ram=0.0, pue=1.0),
        tags=metered_tags(),
    )
    child = make_run(
        client,
        exp,
        tags={
            "mlflow.parentRunId": parent,
            "carbon.metered": "false",
            "carbon.unmetered_reason": "created-after-the-fact",
        },
    )
    other = make_run(client, exp, tags={})  # an unrelated run from another tool: estimated
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    view = rows(ledger, "SELECT run_id, metering, facility_energy_kwh FROM run_co2e")
    assert view[child]["metering"] == "unmetered"
    assert view[child]["facility_energy_kwh"] is None
    assert view[parent]["facility_energy_kwh"] == pytest.approx(1.0)
    assert view[other]["facility_energy_kwh"] == pytest.approx(0.3)  # 300 W x 1 h
