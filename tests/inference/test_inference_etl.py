"""The ETL loads inference runs' windows into inference_windows; inference_co2e recomputes CO2e."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from inference_helpers import PUE, Echo
from mlflow.entities import Metric
from sqlalchemy import Engine, text

from carbonledger import contract
from carbonledger.etl import run_etl
from carbonledger.inference import MeteredModel
from carbonledger.inference.meter import InferenceMeter
from carbonledger.ledger import add_emission_factor
from carbonledger.testing import FakeClock


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def serve(meter: InferenceMeter, clock: FakeClock, per_window: list[int], version: int = 2) -> str:
    model = MeteredModel(Echo(), model_name="fraud", model_version=version, meter=meter)
    for n in per_window:
        for _ in range(n):
            model.predict([1, 2])
        clock.advance(60)
        meter.close_window()
    return "fraud"


def test_windows_land_in_the_ledger_with_their_version_team_and_energy(
    ledger: Engine, make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    serve(make_meter(team="risk"), clock, [10, 0, 30])

    [summary] = run_etl(ledger, mlflow_uris=[mlflow_uri])

    assert summary.windows == 3
    windows = rows(ledger, "SELECT * FROM inference_windows ORDER BY window_start")
    assert [w.requests for w in windows] == [10, 0, 30]
    assert [w.rows for w in windows] == [20, 0, 60]
    w = windows[0]
    assert (w.model_name, w.model_version, w.team, w.grid_zone) == ("fraud", 2, "risk", "DE")
    assert (w.metering, bool(w.any_component_estimated), w.activity_year) == (
        "metered",
        False,
        2024,
    )
    assert w.energy_kwh == pytest.approx(0.006) and w.pue == pytest.approx(PUE)
    assert w.gpu_energy_kwh == pytest.approx(0.005) and w.cpu_energy_kwh == pytest.approx(0.001)
    assert w.active_energy_kwh + w.idle_energy_kwh == pytest.approx(0.006)
    assert w.facility_energy_kwh == pytest.approx(0.006 * PUE)
    assert w.latency_p50_ms is not None and w.busy_s >= 0
    assert windows[1].latency_p50_ms is None  # no requests, no latency
    assert str(windows[0].window_end)[:19] == "2024-06-01 00:01:00"
    [run] = rows(ledger, "SELECT kind, model_name, energy_kwh FROM runs")
    assert run.kind == "inference" and run.energy_kwh == pytest.approx(0.018)


def test_inference_co2e_recomputes_from_the_current_factor_and_per_request_figures(
    ledger: Engine, make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    serve(make_meter(), clock, [40])
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    [v] = rows(ledger, "SELECT * FROM inference_co2e")
    assert v.location_intensity_g_per_kwh == 380.0 and v.factor_year == 2024
    assert v.co2e_location_kg == pytest.approx(0.006 * PUE * 0.380)
    assert v.co2e_market_kg == pytest.approx(v.co2e_location_kg) and v.market_is_location_fallback
    assert v.wh_per_request == pytest.approx(6.0 * PUE / 40)
    assert v.active_wh_per_request == pytest.approx(v.active_energy_kwh * PUE * 1000 / 40)
    assert v.co2e_location_g_per_request == pytest.approx(6.0 * PUE * 0.380 / 40)
    assert v.plugin_co2e_kg == pytest.approx(v.co2e_location_kg)

    with ledger.begin() as conn:  # a restated factor restates inference too
        add_emission_factor(conn, zone="DE", year=2024, intensity_g_per_kwh=300.0, source="x")
        add_emission_factor(
            conn, zone="DE", year=2024, intensity_g_per_kwh=20.0, source="ppa", basis="market"
        )
    [v] = rows(ledger, "SELECT * FROM inference_co2e")
    assert v.co2e_location_kg == pytest.approx(0.006 * PUE * 0.300)
    assert v.co2e_market_kg == pytest.approx(0.006 * PUE * 0.020)
    assert v.location_factor_version == 2 and not v.market_is_location_fallback
    assert v.plugin_co2e_kg == pytest.approx(0.006 * PUE * 0.380)  # kept beside it


def test_incremental_loads_add_new_windows_only_and_skip_complete_runs(
    ledger: Engine,
    make_meter: Callable[..., InferenceMeter],
    clock: FakeClock,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meter = make_meter()
    model = MeteredModel(Echo(), model_name="fraud", model_version=1, meter=meter)
    model.predict([1])
    clock.advance(60)
    meter.close_window()
    first = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    model.predict([1])
    model.predict([1])
    clock.advance(60)
    meter.close_window()
    second = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    reads: list[str] = []  # runs whose metric histories a pass reads (either reader)
    from carbonledger.etl.sources import ClientSource
    from carbonledger.etl.store_read import StoreReader

    for reader in (ClientSource, StoreReader):
        original = reader.metric_histories

        def spy(self: Any, run_ids: Any, keys: Any, _original: Any = original) -> Any:
            run_ids = list(run_ids)
            reads.extend(run_ids)
            return _original(self, run_ids, keys)

        monkeypatch.setattr(reader, "metric_histories", spy)
    third = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]

    assert (first.windows, second.windows) == (1, 1)
    assert [r.requests for r in rows(ledger, "SELECT requests FROM inference_windows")] == [1, 2]
    assert third.windows == 2 and reads  # --full re-reads and rewrites
    reads.clear()
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    assert reads == []  # nothing new: the run's windows are all in the ledger already


def test_a_bad_window_is_quarantined_and_the_others_load(
    ledger: Engine, make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    serve(make_meter(), clock, [5, 5])
    [run] = __import__("inference_helpers").inference_runs(mlflow_uri)
    from mlflow.tracking import MlflowClient

    MlflowClient(mlflow_uri).log_batch(  # an older window (step 0) with a negative count
        run.info.run_id,
        metrics=[
            Metric(contract.W_REQUESTS, -3.0, 1_717_199_940_000, 0),
            Metric(contract.W_WINDOW_S, 60.0, 1_717_199_940_000, 0),
        ],
    )

    [summary] = run_etl(ledger, mlflow_uris=[mlflow_uri])

    assert summary.windows == 2 and summary.quarantined == {"negative": 1}
    [q] = rows(ledger, "SELECT record_id, reason, detail FROM quarantine")
    assert q.record_id == f"{run.info.run_id}/window/0" and "requests" in q.detail


def test_lifecycle_counts_inference_windows_not_the_inference_run_twice(
    ledger: Engine, make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    from carbonledger.budgets import model_lifecycle

    serve(make_meter(), clock, [4, 6])
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    with ledger.connect() as conn:
        lc = model_lifecycle(conn, model_name="fraud")

    assert lc.training_runs == 0  # the inference run is not training
    assert lc.inference_requests == 10 and lc.inference_windows == 2
    assert lc.inference_co2e_kg == pytest.approx(0.012 * PUE * 0.380)
    assert lc.versions_served == (2,)


def test_a_window_ending_after_year_9999_is_quarantined(
    ledger: Engine, make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    serve(make_meter(), clock, [5])
    [run] = __import__("inference_helpers").inference_runs(mlflow_uri)
    from mlflow.tracking import MlflowClient

    last_day_ms = 253_402_214_400_000  # 9999-12-31T00:00:00Z
    MlflowClient(mlflow_uri).log_batch(  # a 2-day window starting on the last day there is
        run.info.run_id,
        metrics=[
            Metric(contract.W_REQUESTS, 3.0, last_day_ms, 7),
            Metric(contract.W_WINDOW_S, 172_800.0, last_day_ms, 7),
        ],
    )

    [summary] = run_etl(ledger, mlflow_uris=[mlflow_uri])

    assert summary.windows == 1 and summary.quarantined == {"invalid-field": 1}
    [q] = rows(ledger, "SELECT record_id, detail FROM quarantine")
    assert q.record_id == f"{run.info.run_id}/window/7" and "ends after 9999" in q.detail


def test_windows_are_matched_hour_by_hour_with_the_profile_estimate_after_2023(
    ledger: Engine, make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    import csv
    import gzip
    from datetime import UTC, datetime
    from pathlib import Path

    from carbonledger.ledger.hourly_factors import seed_hourly_factors

    shared = Path("/work/shared/data/intensity/hourly/DE-LU_2023_hourly.csv.gz")
    if not shared.is_file():
        pytest.skip("shared hourly data not here")
    with ledger.begin() as conn:
        seed_hourly_factors(conn, zones=["DE"])
    serve(make_meter(team="risk"), clock, [10, 0, 30])  # 2024-06-01 00:00, a Saturday
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    with gzip.open(shared, "rt", encoding="utf-8") as fh:
        de = [
            (datetime.fromisoformat(r["Datetime (UTC)"]).replace(tzinfo=UTC),
             float(r["Carbon Intensity gCO₂eq/kWh (LCA)"]))
            for r in csv.DictReader(fh)
        ]  # fmt: skip
    mean = sum(v for _, v in de) / len(de)
    cell = [v for t, v in de if t.month == 6 and t.hour == 0 and t.weekday() >= 5]
    ratio = sum(cell) / len(cell) / mean
    windows = rows(
        ledger,
        "SELECT facility_energy_kwh, co2e_location_kg, intensity_method, "
        "co2e_location_yearly_kg FROM inference_co2e",
    )
    assert len(windows) == 3
    for w in windows:
        assert w.intensity_method == "hourly-profile-estimate"
        assert w.co2e_location_kg == pytest.approx(w.facility_energy_kwh * ratio * 380.0 / 1000)
        assert w.co2e_location_yearly_kg == pytest.approx(w.facility_energy_kwh * 380.0 / 1000)
