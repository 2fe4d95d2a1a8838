"""A ledger where each kind of advice has one answer a test computes by hand.

Window: 2024-10-01 to the latest activity, 2024-12-30 00:00 UTC (90 days). Factors are the
fixtures' TEST_FACTORS (2024: DE 380, FR 50, US-CAL-CISO 250 g/kWh).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from carbonledger import contract
from carbonledger.ledger.models import (
    Experiment,
    InferenceWindow,
    ModelVersion,
    RegisteredModel,
    Run,
    TrackingSource,
)
from carbonledger.ledger.rollup_models import RunMetric, RunMetricHistory
from carbonledger.reporting.rollups import refresh_rollups

SINCE = datetime(2024, 10, 1, tzinfo=UTC)
UNTIL = datetime(2024, 12, 30, tzinfo=UTC)
T0 = datetime(2024, 11, 1, tzinfo=UTC)
SWEEP_ACCURACY = [0.70, 0.72, 0.75, 0.90, 0.80, 0.85, 0.60, 0.88, 0.50, 0.70, 0.89, 0.65]
VAL_LOSS = [1.0, 0.8, 0.6, 0.5, 0.45, 0.4, 0.35, 0.36, 0.37, 0.38]  # best at step 6


def _run(source_id: int, run_id: str, **kw: Any) -> dict[str, Any]:
    energy = kw.pop("energy_kwh")
    pue = kw.pop("pue", 1.0)
    start = kw.pop("start_time", T0)
    row = {
        "source_id": source_id,
        "run_id": run_id,
        "kind": "training",
        "status": "FINISHED",
        "start_time": start,
        "end_time": start + timedelta(hours=1),
        "activity_year": 2024,
        "duration_s": 3600.0,
        "energy_kwh": energy,
        "inclusive_energy_kwh": energy,
        "estimated_energy_kwh": 0.0,
        "pue": pue,
        "facility_energy_kwh": energy * pue,
        "inclusive_facility_energy_kwh": energy * pue,
        "content_hash": run_id,
        "grid_zone": "DE",
        "experiment_id": "2",
        "model_name": None,
        "parent_run_id": None,
        "cloud_provider": None,
        "cloud_region": None,
    }
    row.update(kw)
    return row


def seed_advice(engine: Engine) -> None:
    """Write the runs, histories, versions and serving windows of every kind."""
    with engine.begin() as conn:
        sid = conn.execute(
            insert(TrackingSource)
            .values(uri="http://mlflow.test:5000")
            .returning(TrackingSource.id)
        ).scalar_one()
        conn.execute(
            insert(Experiment).values(
                source_id=sid, experiment_id="1", name="resnet-tuning", team="vision", tags={}
            )
        )
        runs = [
            # failed / killed: 10 and 5 kWh in DE
            _run(sid, "f1", team="vision", experiment_id="1", status="FAILED", energy_kwh=10.0),
            _run(sid, "f2", team="vision", experiment_id="1", status="KILLED", energy_kwh=5.0),
            # place: 2 x 20 kWh on aws eu-central-1 (DE) at PUE 1.135; p2 ends the window
            *[
                _run(
                    sid, name, team="vision", experiment_id="1", energy_kwh=20.0, pue=1.135,
                    cloud_provider="aws", cloud_region="eu-central-1",
                    start_time=start, end_time=start + timedelta(hours=1),
                )
                for name, start in (("p1", T0), ("p2", UNTIL - timedelta(hours=1)))
            ],
            # past best: 5 kWh in DE, 10 epochs, best validation loss at step 6
            _run(sid, "pb", team="nlp", model_name="bert-qa", energy_kwh=5.0),
            # sweep: a parent and 12 children in FR, child i uses 1 + 0.1 i kWh
            _run(sid, "sw", team="nlp", energy_kwh=0.1, grid_zone="FR"),
            *[
                _run(
                    sid, f"c{i + 1:02d}", team="nlp", parent_run_id="sw", grid_zone="FR",
                    energy_kwh=round(1.0 + 0.1 * i, 6), start_time=T0 + timedelta(hours=i),
                )
                for i in range(12)
            ],
            # the runs that produced bert-qa v1 and v2 (0.2 kWh each)
            _run(sid, "v1run", team="nlp", energy_kwh=0.2),
            _run(sid, "v2run", team="nlp", energy_kwh=0.2),
        ]  # fmt: skip
        conn.execute(insert(Run), runs)
        metrics = [
            {
                "source_id": sid,
                "run_id": f"c{i + 1:02d}",
                "key": "val_accuracy",
                "value": v,
                "step": 0,
                "timestamp_ms": 0,
            }
            for i, v in enumerate(SWEEP_ACCURACY)
        ] + [  # fmt: skip
            {
                "source_id": sid,
                "run_id": "v1run",
                "key": "accuracy",
                "value": 0.91,
                "step": 0,
                "timestamp_ms": 0,
            },
            {
                "source_id": sid,
                "run_id": "v2run",
                "key": "accuracy",
                "value": 0.905,
                "step": 0,
                "timestamp_ms": 0,
            },
        ]
        conn.execute(insert(RunMetric), metrics)
        t0_ms = int(T0.timestamp() * 1000)
        history = []
        for step, loss in enumerate(VAL_LOSS):
            ts = t0_ms + (step + 1) * 360_000
            history += [
                {"source_id": sid, "run_id": "pb", "key": "val_loss", "step": step,
                 "timestamp_ms": ts, "value": loss},
                {"source_id": sid, "run_id": "pb", "key": contract.M_ENERGY_KWH, "step": step,
                 "timestamp_ms": ts, "value": 0.5 * (step + 1)},
            ]  # fmt: skip
        conn.execute(insert(RunMetricHistory), history)
        model_id = conn.execute(
            insert(RegisteredModel)
            .values(source_id=sid, name="bert-qa", tags={})
            .returning(RegisteredModel.id)
        ).scalar_one()
        conn.execute(
            insert(ModelVersion),
            [
                {"registered_model_id": model_id, "version": 1, "run_id": "v1run"},
                {"registered_model_id": model_id, "version": 2, "run_id": "v2run"},
            ],
        )
        windows = []
        # v1: 10 days of hourly windows; busy 08-18h (100 requests, 0.2 kWh active), every
        # hour 0.1 kWh idle: 54.5 % idle, 14 quiet hours a day.
        for d in range(10):
            for h in range(24):
                busy = 8 <= h < 18
                windows.append(_window(sid, 1, datetime(2024, 12, 1 + d, h, tzinfo=UTC),
                                       100 if busy else 0, 0.2 if busy else 0.0, 0.1))  # fmt: skip
        # v2: 2 days, 100 requests every hour, 0.05 kWh active + 0.01 idle
        for d in range(2):
            for h in range(24):
                windows.append(_window(sid, 2, datetime(2024, 12, 11 + d, h, tzinfo=UTC),
                                       100, 0.05, 0.01))  # fmt: skip
        conn.execute(insert(InferenceWindow), windows)
        refresh_rollups(conn)  # as the ETL leaves a load: model efficiency reads the rollups


def _window(
    sid: int, version: int, start: datetime, requests: int, active: float, idle: float
) -> dict[str, Any]:
    energy = active + idle
    return {
        "source_id": sid,
        "run_id": f"serve-v{version}",
        "model_name": "bert-qa",
        "model_version": version,
        "team": "nlp",
        "window_start": start,
        "window_end": start + timedelta(hours=1),
        "activity_year": 2024,
        "requests": requests,
        "energy_kwh": energy,
        "active_energy_kwh": active,
        "idle_energy_kwh": idle,
        "pue": 1.0,
        "facility_energy_kwh": energy,
        "grid_zone": "DE",
    }
