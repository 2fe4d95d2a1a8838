"""Typed handles on the accounting views for Core queries.

``run_co2e`` and ``inference_co2e`` (both selections of ``activity_co2e``, the one place the
ledger computes CO2e) and ``v_lifecycle_runs`` (the one definition of a model's training runs).

The views are created by migrations (versioned SQL), not by ``Base.metadata``; these tables
live in their own ``MetaData`` so ``create_all`` and the models-vs-migrations check never see
them. Typed columns matter on SQLite: timestamps are bound and read back like the ORM does.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Integer, MetaData, String, Table

from carbonledger.ledger.models import Timestamp

view_metadata = MetaData()

run_co2e = Table(
    "run_co2e",
    view_metadata,
    Column("run_pk", Integer),
    Column("source_id", Integer),
    Column("run_id", String),
    Column("kind", String),
    Column("status", String),
    Column("team", String),
    Column("model_name", String),
    Column("start_time", Timestamp),
    Column("any_component_estimated", Boolean),
    Column("energy_kwh", Double),
    Column("estimated_energy_kwh", Double),
    Column("facility_energy_kwh", Double),
    Column("inclusive_facility_energy_kwh", Double),
    Column("co2e_location_kg", Double),
    Column("co2e_market_kg", Double),
    Column("estimated_co2e_location_kg", Double),
    Column("estimated_co2e_market_kg", Double),
    Column("inclusive_co2e_location_kg", Double),
    Column("inclusive_co2e_market_kg", Double),
)

inference_co2e = Table(
    "inference_co2e",
    view_metadata,
    Column("window_pk", Integer),
    Column("source_id", Integer),
    Column("run_id", String),
    Column("model_name", String),
    Column("model_version", Integer),
    Column("team", String),
    Column("window_start", Timestamp),
    Column("window_end", Timestamp),
    Column("metering", String),
    Column("any_component_estimated", Boolean),
    Column("requests", Integer),
    Column("energy_kwh", Double),
    Column("active_energy_kwh", Double),
    Column("idle_energy_kwh", Double),
    Column("pue", Double),
    Column("facility_energy_kwh", Double),
    Column("co2e_location_kg", Double),
    Column("co2e_market_kg", Double),
    Column("wh_per_request", Double),
    Column("active_wh_per_request", Double),
    Column("co2e_location_g_per_request", Double),
    Column("estimated_co2e_location_kg", Double),
    Column("estimated_co2e_market_kg", Double),
)

lifecycle_runs = Table(
    "v_lifecycle_runs",
    view_metadata,
    Column("model_name", String),
    Column("run_pk", Integer),
    Column("via", String),
)


def co2e_column(table: Table, basis: str) -> Column:
    """The CO2e column of ``table`` for a Scope 2 basis (``location`` or ``market``)."""
    return table.c.co2e_market_kg if basis == "market" else table.c.co2e_location_kg
