"""Fixtures for the ledger and ETL suites: a ledger on SQLite and on PostgreSQL, MLflow runs.

Each PostgreSQL test gets its own schema (dropped afterwards) so helpers sharing db ``test``
never collide.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from carbonledger.intensity.factors import GridFactor
from carbonledger.ledger import create_ledger_engine, migrate
from carbonledger.ledger.repositories import seed_emission_factors

# Small, exact factor set the tests compute against.
TEST_FACTORS = [
    GridFactor(475.0, "iea-2019-world", year=2019, zone="WORLD"),
    GridFactor(400.0, "electricity-maps-yearly", year=2023, zone="DE", country="DE"),
    GridFactor(380.0, "electricity-maps-yearly", year=2024, zone="DE", country="DE"),
    GridFactor(50.0, "electricity-maps-yearly", year=2024, zone="FR", country="FR"),
    GridFactor(250.0, "electricity-maps-yearly", year=2024, zone="US-CAL-CISO", country="US"),
]


@pytest.fixture(autouse=True)
def _plugin_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed MLflow plugin must not add its own metrics to fixture runs."""
    monkeypatch.setenv("CARBONLEDGER_DISABLE", "1")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base = make_url(request.getfixturevalue("postgres_url"))
    schema = f"cl_test_{uuid.uuid4().hex[:12]}"
    admin = create_ledger_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def ledger(ledger_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A ledger at the newest schema with ``TEST_FACTORS`` seeded.

    A new SQLite file is a copy of the session's migrated template (tests/conftest.py);
    anything else is migrated here.
    """
    url = make_url(ledger_url)
    fresh_file = (
        url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists()
    )
    if fresh_file:
        shutil.copyfile(request.getfixturevalue("ledger_sqlite_template"), str(url.database))
    engine = create_ledger_engine(ledger_url)
    if not fresh_file:
        migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=TEST_FACTORS)
    yield engine
    engine.dispose()


@pytest.fixture
def client(mlflow_uri: str) -> Any:
    """An ``MlflowClient`` on the test's SQLite tracking store."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


T0_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z


def metered_metrics(
    *,
    gpu: float = 1.0,
    cpu: float = 0.2,
    ram: float = 0.05,
    pue: float = 1.2,
    intensity: float = 380.0,
    duration_s: float = 3600.0,
    heartbeat_ms: int | None = None,
) -> dict[str, float]:
    """A consistent set of plugin metrics with exact, known values."""
    energy = gpu + cpu + ram
    out = {
        "carbon/gpu_energy_kwh": gpu,
        "carbon/cpu_energy_kwh": cpu,
        "carbon/ram_energy_kwh": ram,
        "carbon/energy_kwh": energy,
        "carbon/pue": pue,
        "carbon/facility_energy_kwh": energy * pue,
        "carbon/intensity_g_per_kwh": intensity,
        "carbon/co2e_kg": energy * pue * intensity / 1000.0,
        "carbon/duration_s": duration_s,
        "carbon/avg_power_w": energy * 3.6e6 / duration_s,
        "carbon/peak_power_w": energy * 3.6e6 / duration_s * 1.5,
    }
    if heartbeat_ms is not None:
        out["carbon/heartbeat_ms"] = float(heartbeat_ms)
    return out


def metered_tags(zone: str = "DE", **extra: str) -> dict[str, str]:
    """The plugin's tags for a run in ``zone``."""
    tags = {
        "carbon.plugin_version": "0.1.0",
        "carbon.gpu_model": "NVIDIA H100 80GB HBM3",
        "carbon.gpu_count": "1",
        "carbon.cpu_model": "AMD EPYC 7B13",
        "carbon.cpu_count": "2",
        "carbon.ram_gb": "24",
        "carbon.country": zone.split("-")[0],
        "carbon.grid_zone": zone,
        "carbon.intensity_source": f"electricity-maps-yearly:2024:{zone}",
        "carbon.methods": "cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate",
        "carbon.attribution": "device",
        "carbon.node_count": "1",
    }
    tags.update(extra)
    return tags


def make_run(
    client: Any,
    experiment_id: str,
    *,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    start_ms: int = T0_MS,
    end_ms: int | None = T0_MS + 3_600_000,
    status: str = "FINISHED",
    name: str | None = None,
) -> str:
    """Create a run with exact metrics/tags through ``log_batch``; returns its id."""
    from mlflow.entities import Metric, RunTag

    run = client.create_run(experiment_id, start_time=start_ms, run_name=name)
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, start_ms, 0) for k, v in (metrics or {}).items()],
        tags=[RunTag(k, v) for k, v in (tags or {}).items()],
    )
    if end_ms is not None:
        client.set_terminated(run_id, status=status, end_time=end_ms)
    return run_id
