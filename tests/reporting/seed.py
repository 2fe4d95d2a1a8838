"""A deterministic ledger for the reporting and app tests, written straight into its tables.

Covers what the pages show: several teams, models (by tag and by lineage), zones with and
without a market factor, measured and estimated runs, months across two quarters, inference
windows of two versions, budgets, and non-carbon run metrics.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from carbonledger.ledger.models import (
    Budget,
    InferenceWindow,
    ModelVersion,
    RegisteredModel,
    Run,
    RunEnergy,
    TrackingSource,
)
from carbonledger.ledger.repositories import add_emission_factor
from carbonledger.ledger.rollup_models import RunMetric
from carbonledger.reporting.rollups import refresh_rollups

TEAMS = ("vision", "nlp", "speech")
MODELS = ("resnet-prod", "bert-qa", "whisper-small")
ZONES = ("DE", "FR", "US-CAL-CISO", None)
MLFLOW_URI = "http://mlflow.example.internal:5000"


def seed_ledger(engine: Engine, *, runs: int = 60, seed: int = 7) -> None:
    """Fill ``engine`` (migrated, TEST_FACTORS seeded) and refresh the rollups."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        source_id = conn.execute(
            insert(TrackingSource).values(uri=MLFLOW_URI).returning(TrackingSource.id)
        ).scalar_one()
        add_emission_factor(
            conn,
            zone="DE",
            year=2024,
            basis="market",
            intensity_g_per_kwh=30.0,
            source="ppa-windpark-2024",
            instrument="PPA",
        )
        base = datetime(2024, 4, 3, tzinfo=UTC)
        run_rows = []
        for i in range(runs):
            team = TEAMS[i % 3]
            model = MODELS[i % 3] if i % 4 else None
            start = base + timedelta(days=rng.randint(0, 170), minutes=i)
            zone = ZONES[i % len(ZONES)]
            energy = round(rng.uniform(0.5, 20.0), 3)
            pue = 1.2
            estimated = i % 5 == 0
            run_rows.append(
                {
                    "source_id": source_id,
                    "run_id": f"run{i:04d}",
                    "experiment_id": str(1 + i % 2),
                    "run_name": f"trial-{i}",
                    "kind": "training",
                    "status": "FAILED" if i % 11 == 0 else "FINISHED",
                    "start_time": start,
                    "end_time": start + timedelta(hours=1),
                    "activity_year": start.year,
                    "team": team,
                    "model_name": model,
                    "gpu_model": "NVIDIA H100 80GB HBM3",
                    "gpu_count": 1 + i % 4,
                    "cpu_model": "AMD EPYC 7B13",
                    "cpu_count": 8,
                    "ram_gb": 64.0,
                    "methods": "gpu=nvml-energy-counter;cpu=rapl;ram=estimate-w-per-gb",
                    "grid_zone": zone,
                    "country": zone[:2] if zone else None,
                    "metering": "unmetered" if estimated and i % 2 else "metered",
                    "any_component_estimated": estimated,
                    "duration_s": 3600.0,
                    "energy_kwh": energy,
                    "inclusive_energy_kwh": energy,
                    # the CPU part (20 %) of an estimated run is the estimate, its GPU measured
                    "estimated_energy_kwh": energy - round(energy * 0.8, 6) if estimated else 0.0,
                    "pue": pue,
                    "facility_energy_kwh": energy * pue,
                    "inclusive_facility_energy_kwh": energy * pue,
                    "content_hash": f"h{i}",
                }
            )
        conn.execute(insert(Run), run_rows)
        pks = dict(conn.execute(select(Run.run_id, Run.id)).all())
        energy_rows = []
        for r in run_rows:
            gpu = round(r["energy_kwh"] * 0.8, 6)
            energy_rows += [
                {
                    "run_pk": pks[r["run_id"]],
                    "component": "gpu",
                    "energy_kwh": gpu,
                    "method": "nvml-energy-counter",
                    "is_estimate": False,
                },
                {
                    "run_pk": pks[r["run_id"]],
                    "component": "cpu",
                    "energy_kwh": r["energy_kwh"] - gpu,
                    "method": "rapl",
                    "is_estimate": r["any_component_estimated"],
                },
            ]
        conn.execute(insert(RunEnergy), energy_rows)
        conn.execute(
            insert(RunMetric),
            [
                {
                    "source_id": source_id,
                    "run_id": r["run_id"],
                    "key": "accuracy",
                    "value": round(rng.uniform(0.6, 0.95), 4),
                    "step": 10,
                    "timestamp_ms": 0,
                }
                for r in run_rows
            ]
            + [
                {
                    "source_id": source_id,
                    "run_id": r["run_id"],
                    "key": "loss",
                    "value": round(rng.uniform(0.1, 1.0), 4),
                    "step": 10,
                    "timestamp_ms": 0,
                }
                for r in run_rows[::2]
            ],
        )
        # lineage: bert-qa v1/v2 produced by untagged runs (run0000, run0004)
        for name in MODELS:
            model_id = conn.execute(
                insert(RegisteredModel)
                .values(source_id=source_id, name=name)
                .returning(RegisteredModel.id)
            ).scalar_one()
            if name == "bert-qa":
                conn.execute(
                    insert(ModelVersion),
                    [
                        {
                            "registered_model_id": model_id,
                            "version": 1,
                            "run_id": "run0000",
                            "lineage": "run_id",
                        },
                        {
                            "registered_model_id": model_id,
                            "version": 2,
                            "run_id": "run0004",
                            "lineage": "run_id",
                        },
                    ],
                )
        windows = []
        start = datetime(2024, 6, 1, tzinfo=UTC)
        for day in range(45):
            for hour in (0, 6, 12, 18):
                t = start + timedelta(days=day, hours=hour)
                version = 1 if day < 20 else 2
                e = round(rng.uniform(0.05, 0.4), 4)
                windows.append(
                    {
                        "source_id": source_id,
                        "run_id": f"serve-v{version}",
                        "model_name": "bert-qa",
                        "model_version": version,
                        "team": "nlp",
                        "window_start": t,
                        "window_end": t + timedelta(minutes=1),
                        "activity_year": 2024,
                        "requests": rng.randint(0, 500),
                        "energy_kwh": e,
                        "pue": 1.2,
                        "facility_energy_kwh": e * 1.2,
                        "grid_zone": "DE" if version == 1 else "FR",
                    }
                )
        conn.execute(insert(InferenceWindow), windows)
        conn.execute(
            insert(Budget),
            [
                {
                    "scope": "model",
                    "scope_name": "bert-qa",
                    "period": "lifecycle",
                    "limit_co2e_kg": 40.0,
                    "basis": "location",
                },
                {
                    "scope": "team",
                    "scope_name": "vision",
                    "period": "year",
                    "limit_co2e_kg": 500.0,
                    "basis": "market",
                },
            ],
        )
        refresh_rollups(conn)
