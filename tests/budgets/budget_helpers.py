"""Ledger rows for the budget suites, written directly (exact figures, any date)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from carbonledger.ledger.models import InferenceWindow, Run, TrackingSource

NOW = datetime(2024, 6, 20, 12, 0, tzinfo=UTC)


def source(conn: Connection, uri: str = "sqlite:///budgets-test.db") -> int:
    found = conn.execute(select(TrackingSource.id).where(TrackingSource.uri == uri)).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            insert(TrackingSource).values(uri=uri, kind="mlflow").returning(TrackingSource.id)
        ).scalar_one()
    )


def add_run(
    conn: Connection,
    *,
    facility_kwh: float,
    start: datetime,
    team: str = "vision",
    model: str | None = None,
    zone: str = "DE",
    status: str = "FINISHED",
    kind: str = "training",
    run_id: str | None = None,
    **extra: Any,
) -> str:
    """A metered run with PUE 1.0 (so CO2e = facility kWh x the zone's factor)."""
    run_id = run_id or uuid.uuid4().hex
    conn.execute(
        insert(Run).values(
            source_id=source(conn),
            run_id=run_id,
            kind=kind,
            status=status,
            is_stale=False,
            team=team,
            model_name=model,
            start_time=start,
            end_time=start,
            activity_year=start.year,
            metering="metered",
            any_component_estimated=False,
            energy_kwh=facility_kwh,
            pue=1.0,
            facility_energy_kwh=facility_kwh,
            grid_zone=zone,
            content_hash="x",
            **extra,
        )
    )
    return run_id


def add_window(
    conn: Connection,
    *,
    facility_kwh: float,
    start: datetime,
    requests: int = 100,
    model: str = "fraud",
    version: int = 1,
    team: str = "vision",
    zone: str = "DE",
) -> None:
    """An inference window of one hour with PUE 1.0."""
    from datetime import timedelta

    conn.execute(
        insert(InferenceWindow).values(
            source_id=source(conn),
            run_id=f"inference-{model}-{version}",
            model_name=model,
            model_version=version,
            team=team,
            window_start=start,
            window_end=start + timedelta(hours=1),
            activity_year=start.year,
            requests=requests,
            energy_kwh=facility_kwh,
            pue=1.0,
            facility_energy_kwh=facility_kwh,
            grid_zone=zone,
        )
    )
