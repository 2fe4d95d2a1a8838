"""`run_etl` loads MLflow runs into the ledger: values, idempotence, teams, registry."""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def test_a_metered_run_lands_with_its_components_and_figures(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("vision/resnet")
    run_id = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("DE"))

    [summary] = run_etl(ledger, mlflow_uris=[mlflow_uri])

    assert (summary.loaded, summary.updated, summary.unchanged) == (1, 0, 0)
    [run] = rows(ledger, "SELECT * FROM runs WHERE run_id = :r", r=run_id)
    assert run.kind == "training" and run.metering == "metered" and run.status == "FINISHED"
    assert run.energy_kwh == pytest.approx(1.25)
    assert run.facility_energy_kwh == pytest.approx(1.5)
    assert run.grid_zone == "DE" and run.activity_year == 2024
    assert run.gpu_model == "NVIDIA H100 80GB HBM3" and run.gpu_count == 1
    assert run.plugin_co2e_kg == pytest.approx(1.5 * 0.38)
    energy = dict(
        (r.component, (r.energy_kwh, r.method))
        for r in rows(ledger, "SELECT * FROM run_energy WHERE run_pk = :p", p=run.id)
    )
    assert energy == {
        "gpu": (pytest.approx(1.0), "nvml-energy-counter"),
        "cpu": (pytest.approx(0.2), "rapl"),
        "ram": (pytest.approx(0.05), "ram-w-per-gb-estimate"),
    }


def test_a_second_pass_changes_nothing_and_reloading_is_idempotent(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    for i in range(3):
        make_run(client, exp, metrics=metered_metrics(gpu=float(i)), tags=metered_tags())

    first = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    second = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    full = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]

    assert first.loaded == 3
    assert (second.loaded, second.updated, second.unchanged) == (0, 0, 0)
    assert (full.loaded, full.updated, full.unchanged) == (0, 0, 3)
    assert rows(ledger, "SELECT count(*) FROM runs")[0][0] == 3
    assert rows(ledger, "SELECT count(*) FROM run_energy")[0][0] == 9
