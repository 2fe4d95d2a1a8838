"""A registered model's lifecycle: every training run that worked toward it plus its serving."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from budget_helpers import add_run, add_window
from cl_ledger_fixtures import make_run, metered_metrics, metered_tags
from sqlalchemy import Engine

from carbonledger.budgets import lifecycle_timeline, model_lifecycle
from carbonledger.etl import run_etl
from carbonledger.ledger import lifecycle_runs


def test_lifecycle_sums_lineage_tagged_failed_and_sweep_runs_and_every_version_served(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("fraud")
    m = lambda kwh: metered_metrics(gpu=kwh, cpu=0.0, ram=0.0, pue=1.0)  # noqa: E731
    produced = make_run(client, exp, metrics=m(1.0), tags=metered_tags())
    failed = make_run(
        client, exp, metrics=m(0.5), tags=metered_tags(**{"carbon.model_name": "fraud"}),
        status="FAILED",
    )  # fmt: skip
    sweep = make_run(
        client, exp, metrics=m(3.0), tags=metered_tags(**{"carbon.model_name": "fraud"})
    )
    for _ in range(2):  # nested trials: untagged, inside the sweep's inclusive 3 kWh
        make_run(client, exp, metrics=m(1.0), tags=metered_tags(**{"mlflow.parentRunId": sweep}))
    make_run(client, exp, metrics=m(7.0), tags=metered_tags())  # unrelated
    client.create_registered_model("fraud")
    client.create_model_version("fraud", f"runs:/{produced}/model", run_id=produced)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    with ledger.begin() as conn:
        add_window(conn, facility_kwh=2.0, start=datetime(2024, 6, 2, tzinfo=UTC), version=1)
        add_window(conn, facility_kwh=1.0, start=datetime(2024, 6, 3, tzinfo=UTC), version=2)

    with ledger.connect() as conn:
        lc = model_lifecycle(conn, model_name="fraud")
        assert set(lifecycle_runs(conn, model_name="fraud")) >= {produced, failed, sweep}

    assert (lc.training_runs, lc.failed_runs) == (5, 1)  # produced, failed, sweep + 2 trials
    assert lc.training_energy_kwh == pytest.approx(1.0 + 0.5 + 3.0)  # each kWh once
    assert lc.training_co2e_kg == pytest.approx(4.5 * 0.380)
    assert lc.inference_requests == 200 and lc.versions_served == (1, 2)
    assert lc.inference_co2e_kg == pytest.approx(3.0 * 0.380)
    assert lc.co2e_kg == pytest.approx(7.5 * 0.380)
    assert lc.inference_share == pytest.approx(3.0 / 7.5)
    assert lc.inference_g_per_request == pytest.approx(3.0 * 380 / 200)
    assert lc.lifecycle_g_per_request == pytest.approx(7.5 * 380 / 200)


def test_timeline_gives_per_request_co2e_over_time_and_the_running_total(ledger: Engine) -> None:
    day = lambda d: datetime(2024, 6, d, 9, tzinfo=UTC)  # noqa: E731
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=10.0, start=day(1), model="fraud")
        add_window(conn, facility_kwh=1.0, start=day(2), requests=1000)
        add_window(conn, facility_kwh=1.0, start=day(2).replace(hour=10), requests=1000)
        add_window(conn, facility_kwh=1.0, start=day(3), requests=4000)
        add_window(conn, facility_kwh=5.0, start=datetime(2024, 7, 1, tzinfo=UTC), requests=1)

    with ledger.connect() as conn:
        days = lifecycle_timeline(conn, model_name="fraud")
        months = lifecycle_timeline(conn, model_name="fraud", bucket="month", basis="market")

    assert [p.period for p in days] == ["2024-06-01", "2024-06-02", "2024-06-03", "2024-07-01"]
    assert days[0].training_co2e_kg == pytest.approx(3.8) and days[0].requests == 0
    assert days[1].requests == 2000 and days[1].inference_g_per_request == pytest.approx(0.38)
    assert days[2].inference_g_per_request == pytest.approx(0.095)
    assert days[-1].cumulative_co2e_kg == pytest.approx(18 * 0.38)
    assert [p.period for p in months] == ["2024-06", "2024-07"]
    assert months[0].cumulative_co2e_kg == pytest.approx(13 * 0.38)  # market = location here


def test_an_unknown_model_has_an_empty_lifecycle(ledger: Engine) -> None:
    with ledger.connect() as conn:
        lc = model_lifecycle(conn, model_name="nope")
        assert lifecycle_timeline(conn, model_name="nope") == []
    assert (lc.co2e_kg, lc.training_runs, lc.inference_g_per_request) == (0.0, 0, None)


def test_inference_runs_tagged_with_the_model_are_not_training(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=2.0, start=datetime(2024, 6, 1, tzinfo=UTC), model="fraud")
        add_run(
            conn, facility_kwh=9.0, start=datetime(2024, 6, 1, tzinfo=UTC), model="fraud",
            kind="inference",
        )  # fmt: skip
        lc = model_lifecycle(conn, model_name="fraud")
    assert (lc.training_runs, lc.training_energy_kwh) == (1, pytest.approx(2.0))
